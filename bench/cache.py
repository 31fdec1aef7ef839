"""6. Cache: a vehicle-history report served from the cache against one bought from the provider
(the fake vehicle-history server of tests/support/fakes, answering after 200 ms like a remote paid
API), through reports.vehicle_history.get_vehicle_history; and the hit rate over a Zipf-like mix
of VINs (a few VINs are asked about often, most rarely), starting from an empty cache.
"""

from __future__ import annotations

import random
import time

from bench.drain import reset_broker_and_results
from bench.environment import Environment, scaled
from bench.report import Result, Row, percentile, ratio
from tests.support.fakes.vehicle_history import FakeVehicleHistory

PROVIDER_LATENCY = 0.200
ZIPF_EXPONENT = 1.0


class SlowVehicleHistory(FakeVehicleHistory):
    """The fake provider, 200 ms per report (a remote, paid API's typical answer time)."""

    def __init__(self) -> None:
        super().__init__()
        # http.server writes headers and body in two sends; on a kept-alive connection Nagle and
        # the client's delayed ACK then add ~40 ms to every answer. Buffer the reply into one send,
        # so the provider costs what it says: 200 ms.
        self._httpd.RequestHandlerClass.wbufsize = 64 * 1024

    def _report(self, request, match):
        time.sleep(PROVIDER_LATENCY)
        return super()._report(request, match)


def zipf_mix(vins: list[str], lookups: int, *, seed: int = 7) -> list[str]:
    """`lookups` VINs drawn with probability proportional to 1 / rank (Zipf, s = 1)."""
    rng = random.Random(seed)  # noqa: S311 benchmark data, not a secret
    weights = [1 / (rank**ZIPF_EXPONENT) for rank in range(1, len(vins) + 1)]
    return rng.choices(vins, weights=weights, k=lookups)


def run(environment: Environment) -> Result:
    from django.conf import settings
    from django.test import override_settings

    from reports.models import VehicleHistoryReport
    from reports.vehicle_history import get_vehicle_history
    from tests.factories import make_vin

    lookups, distinct = scaled(1000, 200), scaled(200, 50)
    vins = [make_vin(10_000 + n) for n in range(distinct)]
    mix = zipf_mix(vins, lookups)
    reset_broker_and_results(environment)  # an empty cache (the private Redis is flushed)
    VehicleHistoryReport.objects.filter(vin__in=vins).delete()

    fake = SlowVehicleHistory().start()
    timings: dict[str, list[float]] = {"cache": [], "database": [], "provider": []}
    try:
        # The provider's shared rate limit (30/min by default) would turn most misses into waits.
        rates = {**settings.RATE_LIMITS, "vehicle_history": "1000000/m"}
        with override_settings(**fake.settings(), RATE_LIMITS=rates):
            get_vehicle_history(vin=vins[-1])  # warm the client, connections and imports
            VehicleHistoryReport.objects.filter(vin=vins[-1]).delete()
            reset_broker_and_results(environment)
            paid_before = sum(fake.served.values())
            for vin in mix:
                started = time.perf_counter()
                answer = get_vehicle_history(vin=vin)
                timings[answer.source].append(1000 * (time.perf_counter() - started))
    finally:
        fake.stop()
    paid = sum(fake.served.values()) - paid_before
    cache_p50, provider_p50 = percentile(timings["cache"], 50), percentile(timings["provider"], 50)
    speedup = ratio(provider_p50, cache_p50)
    hit_rate = 100 * len(timings["cache"]) / len(mix)
    return Result(
        key="cache",
        title="6. Cache",
        rows=[
            Row(
                "provider call (miss, paid) p50", provider_p50, "ms", note=f"{len(timings['provider'])} calls"
            ),
            Row("provider call (miss, paid) p99", percentile(timings["provider"], 99), "ms"),
            Row(
                "served from cache p50",
                cache_p50,
                "ms",
                baseline=provider_p50,
                baseline_label="provider",
                ratio=speedup,
                note="ratio = times faster",
            ),
            Row("served from cache p99", percentile(timings["cache"], 99), "ms"),
            Row(
                "cache hit rate",
                hit_rate,
                "%",
                note=f"{lookups} lookups over {distinct} VINs, Zipf s=1, empty cache at start",
            ),
            Row("paid provider calls", paid, "", note=f"one per distinct VIN asked ({len(set(mix))})"),
        ],
        goal="cached >= 40x faster than a provider call",
        goal_met=None if speedup is None else speedup >= 40,
        notes=[
            "get_vehicle_history(vin=...) in this process: cache (django-redis, zlib) -> stored report "
            "younger than 24 h -> one paid call under a per-VIN advisory lock, stored then cached. "
            f"Misses that found a stored report: {len(timings['database'])}. The fake answers after "
            f"{int(PROVIDER_LATENCY * 1000)} ms; the provider figure adds the HTTP call, the lock and "
            "the INSERT.",
            "Every miss here is a first sight of its VIN: the hit rate is bounded by 1 - distinct/lookups.",
        ],
    )
