"""8. Dashboards: market analytics and one dealer's performance served from their snapshot (Redis,
or the database row as when Redis is down) against computed live, on a marketplace ten times the
size of `seed_demo` (reports/market_dashboards.py's benchmark hooks). Reports "not available" when that
module or its functions are missing.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from bench.environment import Environment, scaled
from bench.report import Result, Row, percentile, ratio

HOOKS = (
    "refresh_analytics_dashboard",
    "refresh_dealer_performance",
    "read_market_analytics",
    "compute_market_analytics",
    "read_dealer_performance",
    "compute_dealer_performance",
)
SCALE = 10  # x seed_demo: 40 vehicles, 14 deals (two per status), their offers, invoices, shipments


def _timings(call: Callable[[], object], runs: int) -> list[float]:
    call()  # warm
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        timings.append(1000 * (time.perf_counter() - started))
    return timings


def _seed() -> list[int]:
    """A marketplace at SCALE x seed_demo, in tables emptied first (the bench's own database)."""
    from django.db import connection
    from django.test import override_settings
    from django.utils import timezone

    from bench.data import factories
    from billing.models import ExchangeRate, Invoice
    from logistics.models import Shipment
    from marketplace.models import Deal, Offer, Vehicle
    from reports.models import DashboardSnapshot

    tables = [
        m._meta.db_table for m in (Shipment, Invoice, Offer, Deal, Vehicle, DashboardSnapshot, ExchangeRate)
    ]
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE " + ", ".join(connection.ops.quote_name(t) for t in tables) + " CASCADE")
    f = factories()
    now = timezone.now()
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        dealers = [f.make_dealer() for _ in range(4 * SCALE)]
        buyers = [f.make_buyer() for _ in range(5 * SCALE)]
        brokers = [f.make_broker() for _ in range(2 * SCALE)]
        for base, quote, rate in (
            ("USD", "CAD", "1.3676"),
            ("XAF", "CAD", "0.0022649"),
            ("CAD", "USD", "0.7312"),
            ("CAD", "XAF", "441.53"),
        ):
            f.make_exchange_rate(base=base, quote=quote, rate=Decimal(rate))
        vehicles = [
            f.make_vehicle(dealer=dealers[i % len(dealers)], price_cad=Decimal(18000 + 250 * (i % 40)))
            for i in range(40 * SCALE)
        ]
        statuses = [
            Deal.Status.NEGOTIATING,
            Deal.Status.AGREED,
            Deal.Status.INVOICED,
            Deal.Status.PAID,
            Deal.Status.SHIPPING,
            Deal.Status.COMPLETED,
            Deal.Status.CANCELLED,
        ]
        for i, vehicle in enumerate(vehicles):
            f.make_offer(
                vehicle=vehicle, buyer=buyers[i % len(buyers)], currency=("CAD", "USD", "XAF")[i % 3]
            )
        for i in range(14 * SCALE):
            status = statuses[i % len(statuses)]
            deal = f.make_deal(
                vehicle=vehicles[i],
                dealer=vehicles[i].dealer,
                buyer=buyers[i % len(buyers)],
                broker=brokers[i % len(brokers)],
                status=status,
                currency=("CAD", "USD")[i % 2],
            )
            Deal.objects.filter(pk=deal.pk).update(created_at=now - timedelta(days=i % 80))
            if status in (
                Deal.Status.INVOICED,
                Deal.Status.PAID,
                Deal.Status.SHIPPING,
                Deal.Status.COMPLETED,
            ):
                f.make_invoice(deal=deal, status="paid" if status != Deal.Status.INVOICED else "open")
            if status in (Deal.Status.SHIPPING, Deal.Status.COMPLETED):
                f.make_shipment(
                    deal=deal, status="in_transit" if status == Deal.Status.SHIPPING else "delivered"
                )
    return [d.pk for d in dealers]


def run(environment: Environment) -> Result:
    result = Result(key="dashboards", title="8. Dashboards (snapshot vs live)")
    try:
        module = importlib.import_module("reports.market_dashboards")
    except ImportError:
        module = None
    missing = [name for name in HOOKS if not hasattr(module, name)]
    if module is None or missing:
        result.error = f"not available: reports.market_dashboards lacks {', '.join(missing) or 'the module'}"
        return result

    dealer_ids = _seed()
    module.refresh_analytics_dashboard()
    module.refresh_dealer_performance()
    runs, live_runs = scaled(300, 50), scaled(40, 10)
    dealer = dealer_ids[0]
    market = {
        "cache": _timings(module.read_market_analytics, runs),
        "row": _timings(lambda: module.read_market_analytics(use_cache=False), runs),
        "live": _timings(module.compute_market_analytics, live_runs),
    }
    one = {
        "cache": _timings(lambda: module.read_dealer_performance(dealer_id=dealer), runs),
        "live": _timings(lambda: module.compute_dealer_performance(dealer_ids=[dealer]), live_runs),
    }
    all_dealers = _timings(module.compute_dealer_performance, live_runs)

    def p50(values: list[float]) -> float | None:
        return percentile(values, 50)

    result.rows = [
        Row("market analytics computed live p50", p50(market["live"]), "ms"),
        Row(
            "market analytics from snapshot (Redis) p50",
            p50(market["cache"]),
            "ms",
            baseline=p50(market["live"]),
            baseline_label="live",
            ratio=ratio(p50(market["live"]), p50(market["cache"])),
            note="ratio = times faster",
        ),
        Row(
            "market analytics from snapshot row (no cache) p50",
            p50(market["row"]),
            "ms",
            baseline=p50(market["live"]),
            baseline_label="live",
            ratio=ratio(p50(market["live"]), p50(market["row"])),
            note="ratio = times faster",
        ),
        Row("one dealer computed live p50", p50(one["live"]), "ms"),
        Row(
            "one dealer from snapshot (Redis) p50",
            p50(one["cache"]),
            "ms",
            baseline=p50(one["live"]),
            baseline_label="live",
            ratio=ratio(p50(one["live"]), p50(one["cache"])),
            note="ratio = times faster",
        ),
        Row(f"all {len(dealer_ids)} dealers computed live p50", p50(all_dealers), "ms"),
    ]
    result.notes = [
        f"{SCALE}x seed_demo: {len(dealer_ids)} dealers, {40 * SCALE} vehicles with an offer each, "
        f"{14 * SCALE} deals over every status with their invoices and shipments. Snapshots written by "
        "refresh_analytics_dashboard() / refresh_dealer_performance(), then read through "
        f"read_market_analytics() / read_dealer_performance() ({runs} reads) against "
        f"compute_market_analytics() / compute_dealer_performance() ({live_runs} runs), in this process.",
    ]
    return result
