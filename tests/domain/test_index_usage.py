"""Each scheduled task's main query (the selectors) is served by its named index on a few
thousand rows with a realistic spread (most rows not selected), after ANALYZE, with the planner
left free to choose (no enable_seqscan tricks). Runs the database's own EXPLAIN: PostgreSQL's
in CI, SQLite's EXPLAIN QUERY PLAN otherwise; both name the index they use."""

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditLog
from audit.selectors import audit_logs_older_than
from billing.models import Invoice
from billing.selectors import overdue_invoices
from logistics.models import Shipment
from logistics.selectors import delayed_shipments
from marketplace.models import Commission, Deal, Lead, Profile, Role
from marketplace.selectors import pending_commissions, stalled_deals, stalled_leads
from messaging.batches import batch_progress
from messaging.models import WhatsAppMessage
from tests import factories as f

pytestmark = pytest.mark.django_db

ROWS = 4000
rng = random.Random(3)  # a fixed spread: the same plan on every run


def assert_uses_index(queryset, index_name: str, table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
    plan = queryset.explain()
    print(f"{index_name}:\n{plan}")  # shown with -s: the measured plan
    assert index_name in plan, f"expected {index_name} in the plan:\n{plan}"


def _pick(weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def test_overdue_invoices_use_invoice_status_due_idx():
    deal = f.make_deal(status="invoiced")
    today = timezone.localdate()
    spread = {"paid": 80, "void": 5, "open": 13, "failed": 2}
    Invoice.objects.bulk_create(
        Invoice(
            deal=deal,
            number=f"INV-X-{i}",
            amount=Decimal("100"),
            status=_pick(spread),
            due_date=today + timedelta(days=rng.randint(-400, 30)),
        )
        for i in range(ROWS)
    )
    assert_uses_index(overdue_invoices(today=today), "invoice_status_due_idx", Invoice._meta.db_table)


def _steady_state_activity(now, status: str, open_statuses, threshold_days: int):
    """(last_activity_at, stalled_flagged_at) as they look when the daily check has been running:
    closed rows span a year or more; open rows idle past the threshold before yesterday were
    flagged by an earlier run, so only those that crossed it since are still unflagged."""
    if status not in open_statuses:
        return now - timedelta(hours=rng.randint(0, 24 * 400)), None
    idle = timedelta(hours=rng.randint(0, 24 * 60))
    flagged = now - timedelta(days=1) if idle > timedelta(days=threshold_days + 1) else None
    return now - idle, flagged


def test_stalled_deals_use_deal_stalled_idx():
    template = f.make_deal()
    now = timezone.now()
    spread = {"completed": 60, "cancelled": 15, "paid": 5, "negotiating": 10, "agreed": 6, "invoiced": 4}
    rows = []
    for _ in range(ROWS):
        status = _pick(spread)
        active, flagged = _steady_state_activity(now, status, Deal.OPEN_STATUSES, 7)
        rows.append(
            Deal(
                buyer_id=template.buyer_id,
                dealer_id=template.dealer_id,
                vehicle_id=template.vehicle_id,
                agreed_price=Decimal("1000"),
                status=status,
                last_activity_at=active,
                stalled_flagged_at=flagged,
            )
        )
    Deal.objects.bulk_create(rows)
    assert_uses_index(stalled_deals(now=now), "deal_stalled_idx", Deal._meta.db_table)


def test_stalled_leads_use_lead_stalled_idx():
    template = f.make_lead()
    now = timezone.now()
    spread = {"converted": 30, "lost": 40, "new": 15, "contacted": 10, "qualified": 5}
    rows = []
    for _ in range(ROWS):
        status = _pick(spread)
        active, flagged = _steady_state_activity(now, status, Lead.OPEN_STATUSES, 3)
        rows.append(
            Lead(
                buyer_id=template.buyer_id,
                vehicle_id=template.vehicle_id,
                status=status,
                last_activity_at=active,
                stalled_flagged_at=flagged,
            )
        )
    Lead.objects.bulk_create(rows)
    assert_uses_index(stalled_leads(now=now), "lead_stalled_idx", Lead._meta.db_table)


def test_delayed_shipments_use_shipment_status_eta_idx():
    deal = f.make_deal(status="shipping")
    now = timezone.now()
    spread = {"delivered": 80, "cancelled": 3, "at_port": 4, "in_transit": 10, "booked": 3}
    Shipment.objects.bulk_create(
        Shipment(
            deal=deal,
            origin_port="Halifax",
            destination_port="Douala",
            status=_pick(spread),
            eta=now + timedelta(hours=rng.randint(-24 * 300, 24 * 40)),
        )
        for _ in range(ROWS)
    )
    assert_uses_index(delayed_shipments(now=now), "shipment_status_eta_idx", Shipment._meta.db_table)


def test_pending_commissions_use_commission_status_created_idx():
    # (deal, broker) is unique: 80 deals x 50 brokers = 4000 commissions.
    brokers = [f.make_broker() for _ in range(50)]
    deal = f.make_deal(status="paid")
    deals = [
        deal,
        *Deal.objects.bulk_create(
            Deal(
                buyer_id=deal.buyer_id,
                dealer_id=deal.dealer_id,
                vehicle_id=deal.vehicle_id,
                agreed_price=Decimal("1000"),
                status="completed",
            )
            for _ in range(79)
        ),
    ]
    now = timezone.now()
    Commission.objects.bulk_create(
        Commission(
            deal=d,
            broker=b,
            amount=Decimal("50"),
            status=_pick({"settled": 95, "pending": 5}),
            created_at=now - timedelta(hours=rng.randint(0, 24 * 700)),
        )
        for d in deals
        for b in brokers
    )
    assert Profile.objects.filter(role=Role.BROKER).count() >= 50
    assert_uses_index(pending_commissions(), "commission_status_created_idx", Commission._meta.db_table)


def test_old_audit_logs_use_auditlog_created_idx():
    now = timezone.now()
    # Monthly retention over a year of history: about one month's worth is past the cutoff.
    AuditLog.objects.bulk_create(
        AuditLog(
            actor="t",
            action="status:a->b",
            object_type="marketplace.deal",
            object_id=str(i),
            created_at=now - timedelta(hours=rng.randint(0, 24 * 395)),
        )
        for i in range(ROWS)
    )
    cutoff = now - timedelta(days=365)
    assert_uses_index(audit_logs_older_than(cutoff=cutoff), "auditlog_created_idx", AuditLog._meta.db_table)


def test_batch_progress_is_served_by_whatsapp_job_status_idx():
    batches = [f.make_bulk_batch(recipients=0) for _ in range(8)]
    rows = []
    for n in range(ROWS):
        batch = batches[n % len(batches)]
        status = _pick({"sent": 6, "delivered": 2, "failed": 1, "queued": 1})
        rows.append(
            WhatsAppMessage(to=f.make_phone(n), scope=batch.job_id, idempotency_key=f"to:{n}", status=status)
        )
    WhatsAppMessage.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE messaging_whatsappmessage")

    with CaptureQueriesContext(connection) as ctx:
        batch_progress(batches[3])
    (aggregate,) = [q["sql"] for q in ctx.captured_queries if "messaging_whatsappmessage" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {aggregate}")
        plan = "\n".join(str(row[0]) for row in cursor.fetchall())

    print(f"whatsapp_job_status_idx:\n{plan}")
    assert "whatsapp_job_status_idx" in plan, plan
