"""`manage.py seed_demo`: a demo marketplace where every scheduled task has work, valid by the
models' own rules, and idempotent (a second run adds nothing)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from audit.selectors import audit_logs_older_than
from billing.selectors import invoices_awaiting_payment, invoices_to_remind
from logistics.selectors import shipments_to_alert, unnotified_events
from marketplace.models import Deal, Vehicle
from marketplace.selectors import pending_commissions, stalled_deals, stalled_leads

pytestmark = pytest.mark.django_db

DOMAIN_APPS = ("audit", "marketplace", "billing", "logistics", "messaging", "reports")


def _counts() -> dict[str, int]:
    models = [m for m in apps.get_models() if m._meta.app_label in DOMAIN_APPS]
    return {m._meta.label: m.objects.count() for m in [*models, get_user_model()]}


def _seed() -> None:
    call_command("seed_demo", stdout=StringIO())


def test_seed_demo_twice_does_not_double_the_data():
    _seed()
    first = _counts()
    _seed()
    assert _counts() == first


def test_seed_demo_gives_every_scheduled_task_work():
    _seed()
    now, today = timezone.now(), timezone.localdate()
    assert Vehicle.objects.count() >= 36
    assert set(Deal.objects.values_list("status", flat=True)) == set(Deal.Status.values)
    assert invoices_to_remind(today=today).count() >= 2  # send_payment_reminders
    assert invoices_awaiting_payment().exists()  # process_pending_payments
    assert stalled_deals(now=now).exists()  # check_stalled_deals
    assert stalled_leads(now=now).exists()
    assert shipments_to_alert(now=now, today=today).count() == 1  # check_delayed_shipments
    assert unnotified_events().exists()  # send_shipment_updates
    assert pending_commissions().exists()  # process_pending_commissions
    assert audit_logs_older_than(cutoff=now - timedelta(days=365)).count() >= 20  # cleanup


def test_seed_demo_rows_pass_model_validation():
    _seed()
    for model in [m for m in apps.get_models() if m._meta.app_label in DOMAIN_APPS]:
        for row in model.objects.all():
            # Field validators, choices, roles, constraints: seed_demo writes through the ORM,
            # so this is what proves its rows are ones the services would have accepted.
            row.full_clean()
