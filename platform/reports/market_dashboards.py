"""Dealer performance and marketplace analytics: computed by jobs in a few aggregate queries,
stored as snapshots (reports.DashboardSnapshot), cached in Redis, and served from there.

    refresh_dealer_performance()                 # tasks.reports.refresh_dealer_performance
    refresh_analytics_dashboard()                # tasks.reports.refresh_analytics_dashboard
    read_dealer_performance(dealer_id=42)        # cache, else snapshot, else computed once
    read_market_analytics()                      # the same for the market

Benchmark hooks (bench/), after one `refresh_analytics_dashboard()` / `refresh_dealer_performance()`:
serving from the snapshot is `read_market_analytics()` (Redis) or `read_market_analytics(
use_cache=False)` (the database row, as when Redis is down); computing live is
`compute_market_analytics()`. For one dealer: `read_dealer_performance(dealer_id=...)` against
`compute_dealer_performance(dealer_ids=[...])`.

Every computation costs the same number of queries for 5 dealers or 5,000: counts and sums are
grouped in the database (conditional aggregates, correlated subqueries), never summed by a
Python loop over rows. Money is Decimal throughout and reported as strings ("1234.50"); amounts
in other currencies are converted to CAD at the latest stored rate of each currency.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import (
    Avg,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncWeek
from django.utils import timezone

from billing.models import ExchangeRate, Invoice
from integrations.cache import cache_get, cache_key, cache_set, ttl_for
from logistics.models import Shipment
from marketplace.models import Deal, Offer, Profile, Role, Vehicle
from marketplace.money import BASE_CURRENCY, Currency
from reports.models import DashboardSnapshot

DEALER_PERFORMANCE = DashboardSnapshot.Kind.DEALER_PERFORMANCE.value
ANALYTICS_DASHBOARD = DashboardSnapshot.Kind.ANALYTICS_DASHBOARD.value
MARKET_KEY = "market"

# How often each kind is refreshed (settings.DASHBOARD_REFRESH_MINUTES, which its default schedule
# and its cache lifetime read too). A snapshot older than twice its period means refreshes
# stopped: admin and the API say so.
REFRESH_PERIODS: dict[str, timedelta] = {
    kind: timedelta(minutes=settings.DASHBOARD_REFRESH_MINUTES[kind])
    for kind in (DEALER_PERFORMANCE, ANALYTICS_DASHBOARD)
}
STALE_AFTER_PERIODS = 2

# Deals in these states are sales: the buyer paid, and the money is not going back.
WON_STATUSES = (Deal.Status.PAID, Deal.Status.SHIPPING, Deal.Status.COMPLETED)
# A vehicle still in draft has not been listed yet.
UNLISTED_STATUSES = (Vehicle.Status.DRAFT,)
ANALYTICS_WEEKS = 12
CENTS = Decimal("0.01")


def dealer_key(dealer_id: int) -> str:
    return f"dealer:{dealer_id}"


# --- Exchange rates ---------------------------------------------------------------------------


def latest_rates_to_cad() -> dict[str, Decimal]:
    """CAD per unit of each currency, from the latest stored rate of each pair (one query).

    A currency with no X->CAD row is converted through the inverse of its CAD->X row."""
    newest_of_pair = ExchangeRate.objects.filter(base=OuterRef("base"), quote=OuterRef("quote")).order_by(
        "-as_of"
    )
    rows = (
        ExchangeRate.objects.filter(
            Q(quote=BASE_CURRENCY) | Q(base=BASE_CURRENCY),
            as_of=Subquery(newest_of_pair.values("as_of")[:1]),
        )
        .order_by()
        .values_list("base", "quote", "rate")
    )
    direct: dict[str, Decimal] = {}
    inverse: dict[str, Decimal] = {}
    for base, quote, rate in rows:
        if quote == BASE_CURRENCY:
            direct[base] = Decimal(rate)
        else:
            inverse[quote] = Decimal(1) / Decimal(rate)
    rates = {**inverse, **direct, BASE_CURRENCY.value: Decimal(1)}
    return rates


def to_cad(amounts: dict[str, Decimal | None], rates: dict[str, Decimal]) -> tuple[Decimal, list[str]]:
    """Sum of `amounts` ({currency: amount}) in CAD, to the cent, and the currencies that had an
    amount but no known rate (left out of the sum)."""
    total, missing = Decimal(0), []
    for currency, amount in amounts.items():
        if not amount:
            continue
        if currency not in rates:
            missing.append(currency)
            continue
        total += Decimal(amount) * rates[currency]
    return total.quantize(CENTS), sorted(missing)


def _sum_by_currency(field: str, prefix: str = "") -> dict[str, Sum]:
    """One conditional Sum per marketplace currency: {"<prefix>CAD": Sum(field, filter=CAD)...}."""
    currency = f"{prefix}currency" if prefix else "currency"
    return {f"sum_{code}": Sum(field, filter=Q(**{currency: code})) for code in Currency.values}


def _amounts(row: dict[str, Any]) -> dict[str, Decimal | None]:
    return {code: row.get(f"sum_{code}") for code in Currency.values}


def _days(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds() / 86400, 1)


def _money(value: Decimal) -> str:
    return str(Decimal(value).quantize(CENTS))


# Days from a vehicle's listing to its sale: the deal's creation is when the sale was agreed.
_DAYS_TO_SALE = ExpressionWrapper(F("created_at") - F("vehicle__created_at"), output_field=DurationField())


def _count_of(queryset: QuerySet, group_by: str) -> Coalesce:
    """A correlated COUNT(*) subquery over `queryset`, grouped on the outer row (0 when none)."""
    counted = queryset.order_by().values(group_by).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


# --- Dealer performance -----------------------------------------------------------------------


def compute_dealer_performance(
    *, dealer_ids: Iterable[int] | None = None, today: date | None = None
) -> dict[int, dict[str, Any]]:
    """{dealer id: performance} for every dealer (or those in `dealer_ids`), in three queries:
    dealers with their counts, won deals grouped by dealer, and the latest exchange rates."""
    today = today or timezone.localdate()
    dealers = Profile.objects.filter(role=Role.DEALER)
    if dealer_ids is not None:
        dealers = dealers.filter(pk__in=list(dealer_ids))
    rows = (
        dealers.order_by()
        .annotate(
            vehicles_listed=_count_of(
                Vehicle.objects.filter(dealer=OuterRef("pk")).exclude(status__in=UNLISTED_STATUSES), "dealer"
            ),
            vehicles_available=_count_of(
                Vehicle.objects.filter(dealer=OuterRef("pk"), status=Vehicle.Status.AVAILABLE), "dealer"
            ),
            offers_received=_count_of(
                Offer.objects.filter(vehicle__dealer=OuterRef("pk")), "vehicle__dealer"
            ),
            invoices_overdue=_count_of(
                Invoice.objects.filter(
                    deal__dealer=OuterRef("pk"), status__in=Invoice.UNPAID_STATUSES, due_date__lt=today
                ),
                "deal__dealer",
            ),
        )
        .values(
            "pk",
            "display_name",
            "vehicles_listed",
            "vehicles_available",
            "offers_received",
            "invoices_overdue",
        )
    )
    won = {
        row["dealer"]: row
        for row in Deal.objects.filter(status__in=WON_STATUSES, dealer__in=dealers)
        .order_by()
        .values("dealer")
        .annotate(count=Count("pk"), avg_days=Avg(_DAYS_TO_SALE), **_sum_by_currency("agreed_price"))
    }
    rates = latest_rates_to_cad()
    performance: dict[int, dict[str, Any]] = {}
    for row in rows:
        sales = won.get(row["pk"], {})
        value_cad, missing = to_cad(_amounts(sales), rates)
        performance[row["pk"]] = {
            "dealer_id": row["pk"],
            "dealer": row["display_name"],
            "vehicles_listed": row["vehicles_listed"],
            "vehicles_available": row["vehicles_available"],
            "offers_received": row["offers_received"],
            "deals_won": sales.get("count", 0),
            "deals_won_value_cad": _money(value_cad),
            "avg_days_to_sale": _days(sales.get("avg_days")),
            "invoices_overdue": row["invoices_overdue"],
            "currencies_without_rate": missing,
        }
    return performance


# --- Marketplace analytics --------------------------------------------------------------------


def compute_market_analytics(*, now: datetime | None = None, weeks: int = ANALYTICS_WEEKS) -> dict[str, Any]:
    """The market's totals, the same by week over the last `weeks` weeks (Monday starts, in
    TIME_ZONE), payments collected per currency and shipments on time against late. Eleven
    queries whatever the size of the market."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    rates = latest_rates_to_cad()
    return {
        "totals": _market_totals(today=today, rates=rates),
        "payments_collected": _payments_collected(),
        "shipments": _shipment_punctuality(now=now),
        "by_week": _weekly_figures(week_starts=_week_starts(today, weeks), rates=rates),
        "rates_to_cad": {code: str(rate) for code, rate in sorted(rates.items())},
    }


def _won_deals() -> QuerySet:
    return Deal.objects.filter(status__in=WON_STATUSES).order_by()


def _paid_invoices() -> QuerySet:
    return Invoice.objects.filter(status=Invoice.Status.PAID).order_by()


def _market_totals(*, today: date, rates: dict[str, Decimal]) -> dict[str, Any]:
    """Vehicles, offers, won deals and their CAD value, overdue invoices: all time (four queries)."""
    vehicles = Vehicle.objects.order_by().aggregate(
        listed=Count("pk", filter=~Q(status__in=UNLISTED_STATUSES)),
        available=Count("pk", filter=Q(status=Vehicle.Status.AVAILABLE)),
    )
    offers = Offer.objects.order_by().aggregate(received=Count("pk"))
    sales = _won_deals().aggregate(
        count=Count("pk"), avg_days=Avg(_DAYS_TO_SALE), **_sum_by_currency("agreed_price")
    )
    overdue = Invoice.objects.filter(status__in=Invoice.UNPAID_STATUSES, due_date__lt=today).count()
    value_cad, missing = to_cad(_amounts(sales), rates)
    return {
        "vehicles_listed": vehicles["listed"],
        "vehicles_available": vehicles["available"],
        "offers_received": offers["received"],
        "deals_won": sales["count"],
        "deals_won_value_cad": _money(value_cad),
        "avg_days_to_sale": _days(sales["avg_days"]),
        "invoices_overdue": overdue,
        "currencies_without_rate": missing,
    }


def _payments_collected() -> dict[str, dict[str, Any]]:
    """{currency: {count, amount}} of paid invoices, all time (one query)."""
    return {
        row["currency"]: {"count": row["count"], "amount": _money(row["amount"])}
        for row in _paid_invoices()
        .values("currency")
        .annotate(count=Count("pk"), amount=Sum("amount"))
        .order_by("currency")
    }


def _shipment_punctuality(*, now: datetime) -> dict[str, int]:
    """Shipments arrived on time, arrived late, and still moving past their ETA (one query)."""
    arrived = Q(arrived_at__isnull=False, eta__isnull=False)
    return Shipment.objects.order_by().aggregate(
        on_time=Count("pk", filter=arrived & Q(arrived_at__lte=F("eta"))),
        late=Count("pk", filter=arrived & Q(arrived_at__gt=F("eta"))),
        # Not arrived yet, and already past the ETA: late too, but still moving.
        overdue_in_transit=Count(
            "pk", filter=Q(status__in=Shipment.MOVING_STATUSES, arrived_at__isnull=True, eta__lt=now)
        ),
    )


def _weekly_figures(*, week_starts: list[date], rates: dict[str, Decimal]) -> list[dict[str, Any]]:
    """One entry per week since `week_starts[0]`, oldest first, weeks without activity included
    (four grouped queries)."""
    since = timezone.make_aware(datetime.combine(week_starts[0], datetime.min.time()))
    by_week = {start: _empty_week(start) for start in week_starts}
    listed = _by_week(Vehicle.objects.exclude(status__in=UNLISTED_STATUSES), "created_at", since)
    for week, row in _weeks(by_week, listed.annotate(n=Count("pk"))):
        week["vehicles_listed"] = row["n"]
    offers = _by_week(Offer.objects.all(), "created_at", since)
    for week, row in _weeks(by_week, offers.annotate(n=Count("pk"))):
        week["offers_received"] = row["n"]
    sales = _by_week(_won_deals(), "created_at", since).annotate(
        n=Count("pk"), avg_days=Avg(_DAYS_TO_SALE), **_sum_by_currency("agreed_price")
    )
    for week, row in _weeks(by_week, sales):
        week["deals_won"] = row["n"]
        week["deals_won_value_cad"] = _money(to_cad(_amounts(row), rates)[0])
        week["avg_days_to_sale"] = _days(row["avg_days"])
    payments = (
        _by_week(_paid_invoices().filter(paid_at__isnull=False), "paid_at", since)
        .values("week", "currency")
        .annotate(amount=Sum("amount"))
    )
    for week, row in _weeks(by_week, payments):
        week["payments_collected"][row["currency"]] = _money(row["amount"])
    return [by_week[start] for start in week_starts]


def _week_starts(today: date, weeks: int) -> list[date]:
    monday = today - timedelta(days=today.weekday())
    return [monday - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]


def _empty_week(start: date) -> dict[str, Any]:
    return {
        "week": start.isoformat(),
        "vehicles_listed": 0,
        "offers_received": 0,
        "deals_won": 0,
        "deals_won_value_cad": "0.00",
        "avg_days_to_sale": None,
        "payments_collected": {},
    }


def _by_week(queryset: QuerySet, field: str, since: datetime) -> QuerySet:
    """`queryset` since `since`, grouped by the week (TruncWeek) of `field`: annotate to aggregate."""
    return (
        queryset.filter(**{f"{field}__gte": since}).order_by().annotate(week=TruncWeek(field)).values("week")
    )


def _weeks(by_week: dict[date, dict], rows: Iterable[dict]) -> Iterator[tuple[dict, dict]]:
    """(week entry, row) for each grouped row that falls in the window."""
    for row in rows:
        week = by_week.get(_as_date(row["week"]))
        if week is not None:
            yield week, row


def _as_date(value: datetime | date) -> date:
    # TruncWeek of a DateTimeField is an aware datetime at local midnight on the Monday.
    return timezone.localtime(value).date() if isinstance(value, datetime) else value


# --- Snapshots: store, cache, read --------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    """A dashboard as served: its data, when it was computed, and its ETag."""

    kind: str
    key: str
    payload: dict[str, Any]
    computed_at: datetime
    etag: str

    @property
    def period(self) -> timedelta:
        return REFRESH_PERIODS[self.kind]

    def age(self, now: datetime | None = None) -> timedelta:
        return max(timedelta(0), (now or timezone.now()) - self.computed_at)

    def is_stale(self, now: datetime | None = None) -> bool:
        """True when older than twice its refresh period: refreshes have stopped."""
        return self.age(now) > STALE_AFTER_PERIODS * self.period

    def fresh_for(self, now: datetime | None = None) -> int:
        """Seconds until the next scheduled refresh is due (0 once it is overdue)."""
        return max(0, int((self.period - self.age(now)).total_seconds()))

    def as_cached(self) -> dict[str, Any]:
        return {"payload": self.payload, "computed_at": self.computed_at.isoformat(), "etag": self.etag}

    @classmethod
    def from_cached(cls, kind: str, key: str, value: dict[str, Any]) -> Dashboard:
        return cls(
            kind=kind,
            key=key,
            payload=value["payload"],
            computed_at=datetime.fromisoformat(value["computed_at"]),
            etag=value["etag"],
        )

    @classmethod
    def from_snapshot(cls, row: DashboardSnapshot) -> Dashboard:
        return cls(
            kind=row.kind, key=row.key, payload=row.payload, computed_at=row.computed_at, etag=row.etag
        )


def payload_etag(payload: dict[str, Any]) -> str:
    """A hash of the payload's canonical JSON: equal data, equal ETag, across refreshes."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def store_snapshots(
    kind: str, payloads: dict[str, tuple[int | None, dict[str, Any]]], *, computed_at: datetime | None = None
) -> list[Dashboard]:
    """Upsert one snapshot per key ({key: (dealer id or None, payload)}) in one statement, then
    write them all to the cache in one round trip once committed."""
    computed_at = computed_at or timezone.now()
    dashboards = [
        Dashboard(kind=kind, key=key, payload=payload, computed_at=computed_at, etag=payload_etag(payload))
        for key, (_, payload) in payloads.items()
    ]
    rows = [
        DashboardSnapshot(
            key=d.key,
            kind=kind,
            dealer_id=payloads[d.key][0],
            payload=d.payload,
            computed_at=computed_at,
            etag=d.etag,
        )
        for d in dashboards
    ]
    with transaction.atomic():
        DashboardSnapshot.objects.bulk_create(
            rows,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["key"],
            update_fields=["kind", "dealer", "payload", "computed_at", "etag"],
        )
        # The cache follows the committed rows, never ahead of them.
        transaction.on_commit(lambda: _cache_many(kind, dashboards))
    return dashboards


def _cache_many(kind: str, dashboards: list[Dashboard]) -> None:
    # One round trip for every dealer (set_many); a dead Redis is ignored (IGNORE_EXCEPTIONS).
    if dashboards:
        cache.set_many({cache_key(kind, d.key): d.as_cached() for d in dashboards}, timeout=ttl_for(kind))


def refresh_dealer_performance(*, dealer_ids: Iterable[int] | None = None) -> list[Dashboard]:
    """Recompute every dealer's performance (or those in `dealer_ids`) and store the snapshots."""
    performance = compute_dealer_performance(dealer_ids=dealer_ids)
    return store_snapshots(
        DEALER_PERFORMANCE, {dealer_key(pk): (pk, payload) for pk, payload in performance.items()}
    )


def refresh_analytics_dashboard() -> Dashboard:
    """Recompute the marketplace analytics and store the snapshot."""
    return store_snapshots(ANALYTICS_DASHBOARD, {MARKET_KEY: (None, compute_market_analytics())})[0]


def _read(kind: str, key: str, *, use_cache: bool = True) -> Dashboard | None:
    """The dashboard from the cache, else from its database snapshot (re-cached for what is left
    of its period); None when it was never computed. use_cache=False reads the database only."""
    if use_cache:
        hit, value = cache_get(kind, key)
        if hit and value is not None:
            return Dashboard.from_cached(kind, key, value)
    row = DashboardSnapshot.objects.filter(key=key).first()
    if row is None:
        return None
    dashboard = Dashboard.from_snapshot(row)
    if use_cache and not dashboard.is_stale():
        cache_set(kind, key, dashboard.as_cached(), ttl=max(1, dashboard.fresh_for()))
    return dashboard


def read_dealer_performance(
    *, dealer_id: int, compute_missing: bool = True, use_cache: bool = True
) -> Dashboard | None:
    """A dealer's performance as last computed (cache, else snapshot). A dealer never computed
    yet (new since the last refresh) is computed now; None if `dealer_id` is not a dealer."""
    dashboard = _read(DEALER_PERFORMANCE, dealer_key(dealer_id), use_cache=use_cache)
    if dashboard is None and compute_missing:
        stored = refresh_dealer_performance(dealer_ids=[dealer_id])
        dashboard = stored[0] if stored else None
    return dashboard


def read_market_analytics(*, compute_missing: bool = True, use_cache: bool = True) -> Dashboard | None:
    """The marketplace analytics as last computed (cache, else snapshot); computed now if never."""
    dashboard = _read(ANALYTICS_DASHBOARD, MARKET_KEY, use_cache=use_cache)
    if dashboard is None and compute_missing:
        dashboard = refresh_analytics_dashboard()
    return dashboard
