"""7. Scheduled-task queries: each scheduled task's main query (its selector) on 100,000 rows with a
realistic spread (most rows not selected, as in steady state), timed by PostgreSQL's EXPLAIN
ANALYZE with its index and without it (DROP INDEX inside a transaction that is rolled back).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from bench.environment import Environment, scaled
from bench.report import Result, Row

RUNS = 5  # EXPLAIN ANALYZE runs per variant; the median is reported


@dataclass
class Case:
    task: str
    index: str
    table: str
    queryset: Callable[[], object]


def _case(column: str, weights: dict[str, int]) -> str:
    """SQL picking a value by weight from the uniform random number in `column`."""
    total, cumulative, branches = sum(weights.values()), 0, []
    for value, weight in weights.items():
        cumulative += weight
        branches.append(f"WHEN {column} < {cumulative / total!r} THEN '{value}'")
    return "CASE " + " ".join(branches) + f" ELSE '{list(weights)[-1]}' END"


def _replicate(
    model,
    template_pk: int,
    rows: int,
    overrides: dict[str, str | tuple[str, list]],
    *,
    status: dict[str, int] | None = None,
) -> None:
    """INSERT `rows` copies of one row made by the factories, in one statement, with `overrides`
    (SQL over x.g = 1..rows, uniform x.r and x.r2, and x.status drawn from the `status` weights;
    (sql, params) for an expression with parameters)."""
    from django.db import connection

    quote = connection.ops.quote_name
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    expressions, params = [], []
    for column in columns:
        override = overrides.get(column, f"t.{quote(column)}")
        if isinstance(override, tuple):
            override, values = override
            params.extend(values)
        expressions.append(override)
    status_sql = _case("y.r", status) if status else "NULL"
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608 table names quoted from model metadata; values bound
        f"SELECT {', '.join(expressions)} FROM {quote(model._meta.db_table)} t, generate_series(1, %s) g, "
        f"LATERAL (SELECT y.g, y.r, y.r2, {status_sql} AS status "
        "FROM (SELECT g, random() AS r, random() AS r2) y) x WHERE t.id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, rows, template_pk])


def _hours_ago(span_hours: str) -> str:
    return f"now() - make_interval(hours => floor(x.r2 * {span_hours})::int)"


def _seed(rows: int) -> None:
    """`rows` rows in each table a scheduled task scans, spread like the index tests' data
    (tests/domain/test_index_usage.py): most rows closed, paid or already flagged. Emptied first
    (the bench's own database), then filled by SQL from one factory-made row each: seconds, not
    minutes, for 100,000 rows."""
    from django.db import connection

    from audit.models import AuditLog
    from bench.data import factories
    from billing.models import Invoice
    from logistics.models import Shipment, ShipmentEvent
    from marketplace.models import Commission, Deal, Lead

    f = factories()
    models = (Invoice, Shipment, ShipmentEvent, Commission, Lead, Deal, AuditLog)
    tables = [m._meta.db_table for m in models]
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE " + ", ".join(connection.ops.quote_name(t) for t in tables) + " CASCADE")
    deal = f.make_deal(status="invoiced")

    def stalled(open_statuses, threshold_days: int) -> dict[str, str]:
        is_open = "x.status IN (" + ", ".join(f"'{s}'" for s in open_statuses) + ")"
        # Open rows idle up to 60 days; those idle past the threshold before yesterday were
        # flagged by an earlier daily run. Closed rows span 400 days.
        return {
            "last_activity_at": _hours_ago(f"CASE WHEN {is_open} THEN 1440 ELSE 9600 END"),
            "stalled_flagged_at": f"CASE WHEN {is_open} AND x.r2 * 1440 > {(threshold_days + 1) * 24} "
            "THEN now() - interval '1 day' END",
            "status": "x.status",
        }

    _replicate(
        Invoice,
        f.make_invoice(deal=deal).pk,
        rows,
        {
            "number": "'INV-B-' || x.g",
            "status": "x.status",
            "due_date": "current_date + (floor(x.r2 * 431)::int - 400)",
        },
        status={"paid": 80, "void": 5, "open": 13, "failed": 2},
    )
    _replicate(
        Deal,
        deal.pk,
        rows,
        stalled(Deal.OPEN_STATUSES, 7),
        status={"completed": 60, "cancelled": 15, "paid": 5, "negotiating": 10, "agreed": 6, "invoiced": 4},
    )
    _replicate(
        Lead,
        f.make_lead().pk,
        rows,
        stalled(Lead.OPEN_STATUSES, 3),
        status={"converted": 30, "lost": 40, "new": 15, "contacted": 10, "qualified": 5},
    )
    _replicate(
        Shipment,
        f.make_shipment(deal=deal).pk,
        rows,
        {
            "status": "x.status",
            "eta": "now() + make_interval(hours => floor(x.r2 * 8160)::int - 7200)",
        },
        status={"delivered": 80, "cancelled": 3, "at_port": 4, "in_transit": 10, "booked": 3},
    )
    # Events: nearly all notified already (the 6-hourly run keeps up); 1 % arrived since.
    shipment_ids = list(Shipment.objects.values_list("pk", flat=True))
    first = Shipment.objects.get(pk=shipment_ids[0])
    _replicate(
        ShipmentEvent,
        f.make_shipment_event(shipment=first).pk,
        rows,
        {
            "shipment_id": ("(%s::bigint[])[1 + floor(x.r2 * %s)::int]", [shipment_ids, len(shipment_ids)]),
            "notified_at": "CASE WHEN x.r < 0.01 THEN NULL ELSE now() END",
            "occurred_at": _hours_ago("7200"),
        },
    )
    # (deal, broker) is unique: rows / 50 deals x 50 brokers, plus the template on a deal of its own.
    brokers = [f.make_broker() for _ in range(50)]
    deal_ids = list(Deal.objects.order_by("pk").values_list("pk", flat=True)[: rows // 50])
    template = f.make_commission(deal=f.make_deal(status="paid"), broker=brokers[0])
    _replicate(
        Commission,
        template.pk,
        len(deal_ids) * 50,
        {
            "deal_id": ("(%s::bigint[])[1 + (x.g - 1) / 50]", [deal_ids]),
            "broker_id": ("(%s::bigint[])[1 + (x.g - 1) %% 50]", [[b.pk for b in brokers]]),
            "status": "x.status",
            "created_at": _hours_ago("16800"),
        },
        status={"settled": 95, "pending": 5},
    )
    # Monthly retention over a year of history: about a month's worth is past the cutoff.
    _replicate(
        AuditLog, f.make_audit_log().pk, rows, {"object_id": "x.g::text", "created_at": _hours_ago("9480")}
    )
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(table)}")


def _cases() -> list[Case]:
    from django.utils import timezone

    from audit.selectors import audit_logs_older_than
    from billing.selectors import invoices_awaiting_payment, invoices_to_remind
    from logistics.selectors import shipments_to_alert, unnotified_events
    from marketplace.selectors import pending_commissions, stalled_deals, stalled_leads

    now, today = timezone.now(), timezone.localdate()
    cutoff = now - timedelta(days=365)
    return [
        Case(
            "payments.send_payment_reminders",
            "invoice_status_due_idx",
            "billing_invoice",
            lambda: invoices_to_remind(today=today),
        ),
        Case(
            "payments.process_pending_payments",
            "invoice_status_due_idx",
            "billing_invoice",
            invoices_awaiting_payment,
        ),
        Case(
            "deals.check_stalled_deals (leads)",
            "lead_stalled_idx",
            "marketplace_lead",
            lambda: stalled_leads(now=now).values_list("pk", flat=True),
        ),
        Case(
            "deals.check_stalled_deals (deals)",
            "deal_stalled_idx",
            "marketplace_deal",
            lambda: stalled_deals(now=now).values_list("pk", flat=True),
        ),
        Case(
            "commissions.process_pending_commissions",
            "commission_status_created_idx",
            "marketplace_commission",
            pending_commissions,
        ),
        Case(
            "shipments.check_delayed_shipments",
            "shipment_status_eta_idx",
            "logistics_shipment",
            lambda: shipments_to_alert(now=now, today=today),
        ),
        Case(
            "shipments.send_shipment_updates",
            "shipmentevent_unnotified_idx",
            "logistics_shipmentevent",
            lambda: unnotified_events().values_list("pk", "shipment_id", "kind"),
        ),
        Case(
            "maintenance.cleanup_old_audit_logs (one batch)",
            "auditlog_created_idx",
            "audit_auditlog",
            lambda: audit_logs_older_than(cutoff=cutoff).values_list("pk", flat=True)[:1000],
        ),
    ]


def _explain_ms(sql: str, params) -> tuple[float, list[str]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        document = cursor.fetchone()[0]
    plan = document[0] if isinstance(document, list) else document
    indexes: list[str] = []

    def walk(node: dict) -> None:
        if "Index Name" in node:
            indexes.append(node["Index Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return float(plan["Execution Time"]), indexes


def _timed(sql: str, params) -> tuple[float, list[str]]:
    _explain_ms(sql, params)  # warm the buffer cache: both variants read from memory
    runs = [_explain_ms(sql, params) for _ in range(RUNS)]
    return statistics.median(ms for ms, _ in runs), runs[0][1]


def run(environment: Environment) -> Result:
    from django.db import connection, transaction
    from django.test import override_settings

    rows_per_table = scaled(100_000, 10_000)
    # The factories' users get passwords: production's PBKDF2 would spend seconds on 50 brokers.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        _seed(rows_per_table)
    result = Result(
        key="queries",
        title="7. Scheduled-task queries",
        goal="indexed faster than without (seed claim: 80-95 % faster)",
    )
    faster = []
    for case in _cases():
        sql, params = case.queryset().query.sql_with_params()
        with_ms, used = _timed(sql, params)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"DROP INDEX {connection.ops.quote_name(case.index)}")
            without_ms, _ = _timed(sql, params)
            transaction.set_rollback(True)  # the index comes back
        speedup = without_ms / with_ms if with_ms else None
        if speedup:
            faster.append(100 * (1 - with_ms / without_ms))
        result.rows.append(
            Row(
                f"{case.task} [{case.index}]",
                with_ms,
                "ms",
                baseline=without_ms,
                baseline_label="without index",
                ratio=speedup,
                note=(
                    "index used" if case.index in used else f"planner chose {', '.join(used) or 'no index'}"
                )
                + (f", {100 * (1 - with_ms / without_ms):.0f} % faster" if speedup else ""),
            )
        )
    if faster:
        result.goal_met = min(faster) > 0
    result.notes = [
        f"{rows_per_table:,} rows per table (invoices, leads, deals, shipments, shipment events, "
        "commissions, audit log), spread like tests/domain/test_index_usage.py: most rows closed, paid "
        "or already flagged. VACUUM ANALYZE, then EXPLAIN (ANALYZE) of the selector's SQL, median of "
        f"{RUNS} warm runs; 'without' drops the index in a transaction and rolls it back. Ratio = times "
        "faster with the index. Execution time only (no network, no Python).",
    ]
    return result
