"""Vehicle-history reports by VIN, paid per call: the cache, else a stored report younger than
24 h, else one paid provider call (stored, then cached). Paid calls and cache hits and misses are
counted, so the money the cache saves can be shown.

With Redis down the cache reads as a miss (counted) and the stored report is served; the database,
not the cache, is what guarantees one paid call per VIN per 24 h.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client import Counter

from identifiers import normalize_vin
from integrations.cache import cache_get, cache_set
from integrations.vehicle_history import get_vehicle_history_client
from reports.models import VehicleHistoryReport
from reports.selectors import latest_report
from reports.services import store_report

CACHE_KIND = "vehicle_history"
# Namespace of the per-VIN advisory lock ("VHIR"), so it never collides with another lock.
_LOCK_NAMESPACE = 0x56484952

PAID_CALLS = Counter(
    "platform_vehicle_history_paid_calls_total",
    "Vehicle-history reports bought from the provider (each one costs money).",
    ["provider"],
)
REPORTS_SERVED = Counter(
    "platform_vehicle_history_served_total",
    "Vehicle-history reports handed out, by where they came from (cache, database, provider).",
    ["source"],
)


@dataclass(frozen=True)
class VehicleHistory:
    """A report as handed to callers; `source` says where this answer came from."""

    report_id: int
    vin: str
    payload: dict[str, Any]
    provider: str
    fetched_at: datetime
    paid_call: bool
    source: str  # cache | database | provider


def max_age() -> timedelta:
    """How long a report is reused: its cache lifetime (settings.CACHE_TTLS['vehicle_history'])."""
    return timedelta(seconds=int(settings.CACHE_TTLS[CACHE_KIND]))


def get_vehicle_history(*, vin: str) -> VehicleHistory:
    """The vehicle-history report for `vin`, bought from the provider at most once per 24 h.

    `vin` is a VIN (tasks.reports.fetch_vehicle_history's argument type checks it; case and spaces
    are forgiven here too). Raises the provider client's errors (Transient, Permanent,
    RateLimited) when a paid call was needed and failed."""
    vin = normalize_vin(vin)
    now = timezone.now()
    hit, cached = cache_get(CACHE_KIND, vin)
    fetched_at = cached.get("fetched_at") if hit and isinstance(cached, dict) else None
    if fetched_at is not None and fetched_at > now - max_age():
        REPORTS_SERVED.labels("cache").inc()
        return replace(VehicleHistory(**cached), source="cache")

    report = latest_report(vin=vin, now=now, max_age=max_age())
    source = "database"
    if report is None:
        report, source = _fetch_once(vin)
    result = _as_result(report, source)
    # Cache only for what is left of the report's 24 h, so the cache never outlives the rule.
    remaining = (report.fetched_at + max_age() - timezone.now()).total_seconds()
    if remaining > 0:
        cache_set(CACHE_KIND, vin, asdict(result), ttl=remaining)
    REPORTS_SERVED.labels(source).inc()
    return result


def _fetch_once(vin: str) -> tuple[VehicleHistoryReport, str]:
    """Buy the report unless another worker just did: the per-VIN lock makes concurrent askers
    wait for the first one's row instead of paying twice."""
    with transaction.atomic():
        _lock_vin(vin)
        report = latest_report(vin=vin, now=timezone.now(), max_age=max_age())
        if report is not None:
            return report, "database"
        fetched = get_vehicle_history_client().fetch_report(vin)
        report = store_report(
            vin=fetched.vin, provider=fetched.provider, payload=fetched.payload, paid_call=fetched.paid_call
        )
        if fetched.paid_call:
            PAID_CALLS.labels(fetched.provider).inc()
        return report, "provider"


def _lock_vin(vin: str) -> None:
    # A transaction-scoped PostgreSQL advisory lock: released at commit or rollback, even if the
    # provider call raises. SQLite (local runs only) serializes writers by itself.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_LOCK_NAMESPACE, vin])


def _as_result(report: VehicleHistoryReport, source: str) -> VehicleHistory:
    return VehicleHistory(
        report_id=report.pk,
        vin=report.vin,
        payload=report.payload,
        provider=report.provider,
        fetched_at=report.fetched_at,
        paid_call=report.paid_call,
        source=source,
    )


def paid_call_counts(*, since: datetime | None = None) -> dict[str, int]:
    """Paid and free (console) provider calls stored since `since`: the durable, queryable count."""
    qs = VehicleHistoryReport.objects.all()
    if since is not None:
        qs = qs.filter(fetched_at__gte=since)
    counts = qs.aggregate(
        paid=Count("pk", filter=Q(paid_call=True)), free=Count("pk", filter=Q(paid_call=False))
    )
    return {"paid": counts["paid"], "free": counts["free"]}
