"""The reads scheduled tasks will run (and the once-per-day / once-per-row guards beside them)
select exactly the rows they should."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.selectors import audit_logs_older_than
from billing.selectors import invoices_to_remind, latest_rate, overdue_invoices
from billing.services import claim_invoice_reminder
from logistics.selectors import delayed_shipments, shipments_to_alert, unnotified_events
from logistics.services import claim_delay_alert, mark_events_notified
from marketplace.selectors import pending_commissions, stalled_deals, stalled_leads
from marketplace.services import flag_stalled, record_activity
from messaging.services import apply_twilio_status
from reports.selectors import latest_report
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now()


def test_overdue_invoices_are_unpaid_ones_past_due(now):
    today = timezone.localdate()
    past = today - timedelta(days=2)
    overdue_open = f.make_invoice(status="open", due_date=past)
    overdue_failed = f.make_invoice(status="failed", due_date=past - timedelta(days=1))
    f.make_invoice(status="paid", due_date=past)
    f.make_invoice(status="void", due_date=past)
    f.make_invoice(status="open", due_date=today)
    f.make_invoice(status="draft", due_date=past)

    assert list(overdue_invoices(today=today)) == [overdue_failed, overdue_open]


def test_an_invoice_is_reminded_at_most_once_a_day():
    today = timezone.localdate()
    invoice = f.make_invoice(status="open", due_date=today - timedelta(days=5))
    assert list(invoices_to_remind(today=today)) == [invoice]

    assert claim_invoice_reminder(invoice_id=invoice.pk, today=today, actor="t") is True
    assert claim_invoice_reminder(invoice_id=invoice.pk, today=today, actor="t") is False
    assert list(invoices_to_remind(today=today)) == []

    tomorrow = today + timedelta(days=1)
    assert list(invoices_to_remind(today=tomorrow)) == [invoice]
    assert claim_invoice_reminder(invoice_id=invoice.pk, today=tomorrow, actor="t") is True


def test_stalled_deals_are_open_idle_and_unflagged(now, settings):
    settings.STALLED_DEAL_AFTER_DAYS = 7
    idle = now - timedelta(days=8)
    stalled = f.make_deal(status="agreed", last_activity_at=idle)
    six_days = f.make_deal(status="agreed", last_activity_at=now - timedelta(days=6))  # recent enough
    f.make_deal(status="completed", last_activity_at=idle)  # closed
    f.make_deal(status="negotiating", last_activity_at=idle, stalled_flagged_at=now)  # already flagged

    assert list(stalled_deals(now=now)) == [stalled]
    assert set(stalled_deals(now=now, threshold=timedelta(days=5))) == {stalled, six_days}

    assert flag_stalled(obj=stalled, now=now, actor="t") is True
    assert flag_stalled(obj=stalled, now=now, actor="t") is False
    assert list(stalled_deals(now=now)) == []

    # New activity restarts the clock: stalled again only after another idle spell.
    record_activity(obj=stalled, actor="buyer", note="replied")
    assert list(stalled_deals(now=now + timedelta(days=1))) == []
    assert stalled in stalled_deals(now=now + timedelta(days=8))


def test_stalled_leads_use_their_own_threshold(now, settings):
    settings.STALLED_LEAD_AFTER_DAYS = 3
    stalled = f.make_lead(status="contacted", last_activity_at=now - timedelta(days=4))
    f.make_lead(status="new", last_activity_at=now - timedelta(days=2))
    f.make_lead(status="converted", last_activity_at=now - timedelta(days=40))
    assert list(stalled_leads(now=now)) == [stalled]


def test_delayed_shipments_are_moving_ones_past_eta_and_alerted_once_a_day(now):
    today = timezone.localdate()
    late = f.make_shipment(status="in_transit", eta=now - timedelta(days=3))
    f.make_shipment(status="in_transit", eta=now + timedelta(days=3))
    f.make_shipment(status="delivered", eta=now - timedelta(days=3))
    f.make_shipment(status="in_transit", eta=None)

    assert list(delayed_shipments(now=now)) == [late]
    assert list(shipments_to_alert(now=now, today=today)) == [late]
    assert claim_delay_alert(shipment_id=late.pk, today=today, actor="t") is True
    assert claim_delay_alert(shipment_id=late.pk, today=today, actor="t") is False
    assert list(shipments_to_alert(now=now, today=today)) == []
    assert list(shipments_to_alert(now=now, today=today + timedelta(days=1))) == [late]


def test_shipment_events_are_notified_once(now):
    shipment = f.make_shipment()
    event = f.make_shipment_event(shipment=shipment)
    f.make_shipment_event(shipment=shipment, kind="booked", notified_at=now)
    assert list(unnotified_events()) == [event]
    assert mark_events_notified(event_ids=[event.pk], at=now) == 1
    assert mark_events_notified(event_ids=[event.pk], at=now) == 0
    shipment.refresh_from_db()
    assert shipment.last_buyer_update_at == now
    assert list(unnotified_events()) == []


def test_pending_commissions_oldest_first(now):
    older = f.make_commission(created_at=now - timedelta(days=9))
    newer = f.make_commission(created_at=now - timedelta(days=1))
    f.make_commission(status="settled", created_at=now - timedelta(days=20))
    assert list(pending_commissions()) == [older, newer]


def test_audit_logs_older_than_a_cutoff_oldest_first(now):
    old = [f.make_audit_log(created_at=now - timedelta(days=400 + i)) for i in range(5)]
    f.make_audit_log(created_at=now - timedelta(days=10))

    assert list(audit_logs_older_than(cutoff=now - timedelta(days=365))) == list(reversed(old))


def test_latest_rate_on_a_day(now):
    today = timezone.localdate()
    f.make_exchange_rate(base="CAD", quote="XAF", rate=Decimal("440"), as_of=today - timedelta(days=1))
    f.make_exchange_rate(base="CAD", quote="XAF", rate=Decimal("445"), as_of=today)
    assert latest_rate(base="CAD", quote="XAF") == Decimal("445")
    assert latest_rate(base="CAD", quote="XAF", on=today - timedelta(days=1)) == Decimal("440")
    assert latest_rate(base="USD", quote="XAF") is None
    assert latest_rate(base="CAD", quote="CAD") == Decimal(1)


def test_latest_report_respects_max_age(now):
    vin = f.make_vin()
    f.make_vehicle_history_report(vin=vin, fetched_at=now - timedelta(hours=30))
    fresh = f.make_vehicle_history_report(vin=vin, fetched_at=now - timedelta(hours=2))
    assert latest_report(vin=vin) == fresh
    assert latest_report(vin=vin, now=now + timedelta(hours=21), max_age=timedelta(hours=24)) == fresh
    assert latest_report(vin=vin, now=now + timedelta(hours=30), max_age=timedelta(hours=24)) is None


def test_twilio_status_callbacks_only_move_a_message_forward():
    message = f.make_whatsapp_message(status="sent", twilio_sid="SM" + "1" * 32)
    assert apply_twilio_status(twilio_sid=message.twilio_sid, status="read").status == "read"
    assert apply_twilio_status(twilio_sid=message.twilio_sid, status="delivered").status == "read"
    assert apply_twilio_status(twilio_sid="SMunknown", status="read") is None
