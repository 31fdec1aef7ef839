"""Domain admin: every changelist costs the same number of queries for 5 rows as for 50 (no
N+1), every domain model is registered, history stays read-only, and status changes made from
admin go through the state machines."""

from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditLog
from billing.models import Invoice
from identifiers import mask_phone
from messaging.models import WhatsAppMessage
from tests import factories as f
from tests.support.two_factor import log_in_staff

pytestmark = pytest.mark.django_db

DOMAIN_APPS = ("audit", "marketplace", "billing", "logistics", "messaging", "reports")


def _rates(n: int, start: int) -> None:
    for i in range(start, start + n):
        f.make_exchange_rate(as_of=timezone.localdate() - timedelta(days=i))


BUILDERS = {
    "audit.auditlog": f.make_audit_log,
    "marketplace.profile": f.make_buyer,
    "marketplace.vehicle": f.make_vehicle,
    "marketplace.offer": f.make_offer,
    "marketplace.lead": f.make_lead,
    "marketplace.deal": f.make_deal,
    "marketplace.commission": f.make_commission,
    "billing.invoice": f.make_invoice,
    "billing.paymentattempt": f.make_payment_attempt,
    "billing.exchangerate": None,  # unique per day: built by _rates
    "logistics.shipment": f.make_shipment,
    "logistics.shipmentevent": f.make_shipment_event,
    "messaging.whatsappmessage": lambda: f.make_whatsapp_message(vehicle=f.make_vehicle()),
    "messaging.bulkbatch": f.make_bulk_batch,
    "reports.vehiclehistoryreport": f.make_vehicle_history_report,
    "reports.dashboardsnapshot": f.make_dashboard_snapshot,
}


def _build(label: str, n: int, already: int) -> None:
    if label == "billing.exchangerate":
        _rates(n, already)
        return
    for _ in range(n):
        BUILDERS[label]()


@pytest.fixture
def admin_client_(client):
    log_in_staff(client, f.make_user(is_superuser=True), password="pw")
    return client


def test_every_domain_model_has_an_admin_and_a_query_count_case():
    models = {m._meta.label_lower for m in apps.get_models() if m._meta.app_label in DOMAIN_APPS}
    assert models == set(BUILDERS)
    assert all(admin.site.is_registered(apps.get_model(label)) for label in models)


def _changelist_queries(client, url: str, expected_rows: int) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == expected_rows
    assert len(response.context["cl"].result_list) == expected_rows
    return len(ctx.captured_queries)


@pytest.mark.parametrize("label", sorted(BUILDERS))
def test_changelist_costs_the_same_queries_for_5_and_50_rows(admin_client_, label):
    model = apps.get_model(label)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    base = model.objects.count()  # rows the builders' dependencies created (profiles)
    _build(label, 5, 0)
    small = model.objects.count()
    at_5 = _changelist_queries(admin_client_, url, small)
    _build(label, 45, 5)
    at_50 = _changelist_queries(admin_client_, url, model.objects.count())
    assert small - base == 5 and model.objects.count() - small >= 45
    assert at_50 == at_5, f"{label}: {at_5} queries for {small} rows, {at_50} for {model.objects.count()}"


def test_audit_log_is_read_only_in_admin(admin_client_):
    entry = f.make_audit_log()
    model_admin = admin.site._registry[AuditLog]
    request = admin_client_.get(reverse("admin:audit_auditlog_changelist")).wsgi_request
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, entry)
    assert not model_admin.has_delete_permission(request, entry)
    response = admin_client_.post(
        reverse("admin:audit_auditlog_change", args=[entry.pk]), {"actor": "mallory", "action": "forged"}
    )
    assert response.status_code == 403
    entry.refresh_from_db()
    assert entry.actor == "test"


def test_twilio_sid_is_read_only_in_admin(admin_client_):
    message = f.make_whatsapp_message(twilio_sid="SM" + "a" * 32)
    response = admin_client_.get(reverse("admin:messaging_whatsappmessage_change", args=[message.pk]))
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "twilio_sid" not in form.fields
    assert "status" not in form.fields


def test_phone_numbers_are_masked_in_changelists(admin_client_):
    buyer = f.make_buyer(phone="+237670009999")
    f.make_whatsapp_message(to="+14165551234")
    profiles = admin_client_.get(reverse("admin:marketplace_profile_changelist")).content.decode()
    messages = admin_client_.get(reverse("admin:messaging_whatsappmessage_changelist")).content.decode()
    assert buyer.phone not in profiles and "+2376******99" in profiles
    assert "+14165551234" not in messages and "+1416*****34" in messages


def test_status_changes_from_admin_go_through_the_state_machine(admin_client_):
    paid, open_ = f.make_invoice(status="paid"), f.make_invoice(status="open")
    url = reverse("admin:billing_invoice_changelist")
    response = admin_client_.post(
        url, {"action": "mark_void", "_selected_action": [paid.pk, open_.pk]}, follow=True
    )
    assert response.status_code == 200
    paid.refresh_from_db(), open_.refresh_from_db()
    assert (paid.status, open_.status) == (Invoice.Status.PAID, Invoice.Status.VOID)
    shown = [str(m) for m in response.context["messages"]]
    assert any("1 row(s) marked void" in m for m in shown)
    assert any(f"#{paid.pk}" in m and "status" in m for m in shown)
    assert AuditLog.objects.filter(object_type="billing.invoice", object_id=str(open_.pk)).get().actor
    change = admin_client_.get(reverse("admin:billing_invoice_change", args=[open_.pk]))
    assert "status" not in change.context["adminform"].form.fields


def test_bulk_batch_page_shows_progress_counted_from_rows_with_stable_hooks(admin_client_):
    batch = f.make_bulk_batch(recipients=4)
    rows = list(WhatsAppMessage.objects.filter(scope=batch.job_id).order_by("pk"))
    WhatsAppMessage.objects.filter(pk=rows[0].pk).update(status="sent", sent_at=timezone.now())
    WhatsAppMessage.objects.filter(pk=rows[1].pk).update(
        status="failed", error_code="21211", error_message="The 'To' number +1416*****99 is not valid"
    )

    page = admin_client_.get(reverse("admin:messaging_bulkbatch_change", args=[batch.pk])).content.decode()
    progress = admin_client_.get(reverse("admin:messaging_bulkbatch_progress", args=[batch.pk])).json()
    listing = admin_client_.get(reverse("admin:messaging_bulkbatch_changelist"))

    assert 'id="batch-progress"' in page and 'data-percent="50"' in page and 'data-state="running"' in page
    assert 'id="batch-cancel"' in page and 'id="batch-retry-failed"' in page
    assert mask_phone(rows[1].to) in page and rows[1].to not in page and "21211" in page
    assert {k: progress[k] for k in ("total", "sent", "failed", "pending", "percent", "state")} == {
        "total": 4,
        "sent": 1,
        "failed": 1,
        "pending": 2,
        "percent": 50,
        "state": "running",
    }
    assert "50% (1 sent, 1 failed, 2 pending)" in listing.content.decode()
    assert listing.context["cl"].model_admin.show_full_result_count is False


def test_bulk_batch_cancel_and_retry_need_a_post(admin_client_):
    batch = f.make_bulk_batch(recipients=2)

    assert admin_client_.get(reverse("admin:messaging_bulkbatch_cancel", args=[batch.pk])).status_code == 405
    assert admin_client_.get(reverse("admin:messaging_bulkbatch_retry", args=[batch.pk])).status_code == 405
    batch.refresh_from_db()
    assert batch.state == "running"
