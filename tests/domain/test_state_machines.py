"""Every state machine: legal transitions succeed and write an audit entry; illegal ones raise a
ValidationError on "status" and change nothing (row and audit log)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditLog
from audit.selectors import audit_trail
from billing.models import Invoice
from billing.services import transition_invoice
from logistics.models import Shipment
from logistics.services import transition_shipment
from marketplace.models import Commission, Deal, Lead, Offer, Vehicle
from marketplace.services import (
    settle_commission,
    transition_deal,
    transition_lead,
    transition_offer,
    transition_vehicle,
)
from tests import factories as f

pytestmark = pytest.mark.django_db


@dataclass
class Machine:
    model: type
    make: Callable[..., Any]  # make(status=...) -> row
    transition: Callable[..., Any]
    id_kwarg: str
    start: str
    path: list[str]  # a legal walk from `start`
    illegal: tuple[str, str]  # (from, to) that must be refused


MACHINES = {
    "vehicle": Machine(
        Vehicle,
        f.make_vehicle,
        transition_vehicle,
        "vehicle_id",
        "draft",
        ["available", "reserved", "available", "sold", "exported"],
        ("sold", "available"),
    ),
    "offer": Machine(
        Offer, f.make_offer, transition_offer, "offer_id", "pending", ["accepted"], ("rejected", "pending")
    ),
    "lead": Machine(
        Lead,
        f.make_lead,
        transition_lead,
        "lead_id",
        "new",
        ["contacted", "lost", "new", "qualified", "converted"],
        ("converted", "new"),
    ),
    "deal": Machine(
        Deal,
        f.make_deal,
        transition_deal,
        "deal_id",
        "negotiating",
        ["agreed", "invoiced", "paid", "shipping", "completed"],
        ("paid", "cancelled"),
    ),
    "invoice": Machine(
        Invoice,
        f.make_invoice,
        transition_invoice,
        "invoice_id",
        "draft",
        ["open", "processing", "failed", "processing", "paid"],
        ("paid", "open"),
    ),
    "shipment": Machine(
        Shipment,
        f.make_shipment,
        transition_shipment,
        "shipment_id",
        "booked",
        ["in_transit", "at_port", "delivered"],
        ("delivered", "in_transit"),
    ),
}


@pytest.mark.parametrize("name", MACHINES)
def test_legal_transitions_succeed_and_are_audited(name):
    m = MACHINES[name]
    row = m.make(status=m.start)
    before = m.start
    for to in m.path:
        result = m.transition(**{m.id_kwarg: row.pk, "to": to, "actor": "alice"})
        assert result.status == to
        row.refresh_from_db()
        assert row.status == to
        entry = audit_trail(obj=row).first()
        assert (entry.actor, entry.action) == ("alice", f"status:{before}->{to}")
        assert entry.changes["status"] == [before, to]
        before = to
    assert audit_trail(obj=row).count() == len(m.path)


@pytest.mark.parametrize("name", MACHINES)
def test_illegal_transition_raises_on_status_and_changes_nothing(name):
    m = MACHINES[name]
    current, to = m.illegal
    row = m.make(status=current)
    snapshot = m.model.objects.filter(pk=row.pk).values().get()
    audits = AuditLog.objects.count()

    with pytest.raises(ValidationError) as exc:
        m.transition(**{m.id_kwarg: row.pk, "to": to, "actor": "alice"})

    assert "status" in exc.value.message_dict
    assert m.model.objects.filter(pk=row.pk).values().get() == snapshot
    assert AuditLog.objects.count() == audits


@pytest.mark.parametrize("name", MACHINES)
def test_unknown_status_is_refused_naming_the_field(name):
    m = MACHINES[name]
    row = m.make(status=m.start)
    with pytest.raises(ValidationError) as exc:
        m.transition(**{m.id_kwarg: row.pk, "to": "teleported", "actor": "alice"})
    assert "status" in exc.value.message_dict
    row.refresh_from_db()
    assert row.status == m.start


@pytest.mark.parametrize("name", MACHINES)
def test_transition_table_covers_every_status(name):
    model = MACHINES[name].model
    statuses = set(model.Status.values)
    assert set(model.TRANSITIONS) == statuses
    assert set().union(*model.TRANSITIONS.values()) <= statuses


def test_deal_status_change_counts_as_activity_and_clears_the_stall_flag():
    long_ago = timezone.now() - timedelta(days=30)
    deal = f.make_deal(last_activity_at=long_ago, stalled_flagged_at=long_ago)
    transition_deal(deal_id=deal.pk, to="agreed", actor="alice")
    deal.refresh_from_db()
    assert deal.last_activity_at > long_ago
    assert deal.stalled_flagged_at is None


def test_paying_an_invoice_stamps_paid_at():
    invoice = f.make_invoice(status="processing")
    transition_invoice(invoice_id=invoice.pk, to="paid", actor="stripe-webhook")
    invoice.refresh_from_db()
    assert invoice.paid_at is not None


def test_settling_a_commission_records_rate_and_cad_amount_once():
    deal = f.make_deal(status="paid", currency="USD", agreed_price=Decimal("20000.00"))
    commission = f.make_commission(deal=deal, amount=Decimal("500.00"))

    settle_commission(commission_id=commission.pk, exchange_rate=Decimal("1.3676148796"), actor="task")

    commission.refresh_from_db()
    assert commission.status == Commission.Status.SETTLED
    assert commission.amount_cad == Decimal("683.81")
    assert commission.exchange_rate == Decimal("1.3676148796")
    assert commission.settled_at is not None
    assert audit_trail(obj=commission).get().changes["status"] == ["pending", "settled"]

    snapshot = Commission.objects.filter(pk=commission.pk).values().get()
    with pytest.raises(ValidationError) as exc:
        settle_commission(commission_id=commission.pk, exchange_rate=Decimal("2"), actor="task")
    assert "status" in exc.value.message_dict
    assert Commission.objects.filter(pk=commission.pk).values().get() == snapshot
    assert audit_trail(obj=commission).count() == 1
