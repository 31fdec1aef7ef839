"""The counted cache helper and the shared rate limiter, on real Redis (and a Redis that dies)."""

import time

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import REGISTRY

from integrations import ratelimit
from integrations.cache import cache_counts, cache_delete, cached
from integrations.errors import RateLimited
from tests.support.processes import wait_until


def _point_cache_at(settings, redis_url):
    caches = {"default": {**settings.CACHES["default"], "LOCATION": redis_url}}
    settings.CACHES = caches


def test_cached_computes_once_then_counts_hits(marker):
    calls = []
    before = cache_counts("exchange_rates")

    values = [cached("exchange_rates", marker, lambda: calls.append(1) or {"rate": "1.37"}) for _ in range(3)]

    after = cache_counts("exchange_rates")
    assert values == [{"rate": "1.37"}] * 3 and len(calls) == 1
    assert after["miss"] - before["miss"] == 1
    assert after["hit"] - before["hit"] == 2
    cache_delete("exchange_rates", marker)


def test_with_redis_down_cached_still_answers_and_counts_misses(settings, private_redis, marker):
    _point_cache_at(settings, private_redis.url)
    private_redis.stop()
    before = cache_counts("exchange_rates")

    values = [cached("exchange_rates", marker, lambda: "computed") for _ in range(2)]

    assert values == ["computed", "computed"]
    assert cache_counts("exchange_rates")["miss"] - before["miss"] == 2


@pytest.mark.parametrize(
    ("text", "limit", "period"),
    [("10/s", 10, 1.0), ("30/m", 30, 60.0), ("500/h", 500, 3600.0), ("5/10s", 5, 10.0)],
)
def test_rates_are_parsed_from_settings_text(text, limit, period):
    assert ratelimit.Rate.parse(text) == ratelimit.Rate(limit=limit, period=period)


@pytest.mark.parametrize("text", ["10", "ten/s", "0/s", "10/week"])
def test_a_malformed_rate_is_a_configuration_error(text):
    with pytest.raises(ImproperlyConfigured):
        ratelimit.Rate.parse(text)


def test_the_limit_allows_n_then_defers_with_the_time_until_a_slot_frees(settings, marker):
    settings.RATE_LIMITS = {marker: "3/s"}

    for _ in range(3):
        ratelimit.acquire(marker)
    with pytest.raises(RateLimited) as raised:
        ratelimit.acquire(marker)

    window = 1.0 * (1 + settings.RATE_LIMIT_WINDOW_MARGIN)
    assert 0 < raised.value.retry_after <= window
    assert raised.value.provider == marker
    # Once the oldest slot leaves the window, the next caller gets one.
    wait_until(lambda: _acquired(marker), timeout=window + 1, what="a slot to free up")


def _acquired(name):
    try:
        ratelimit.acquire(name)
    except RateLimited:
        return False
    return True


def test_no_one_second_window_ever_holds_more_than_the_limit(settings, marker):
    settings.RATE_LIMITS = {marker: "5/s"}
    granted = []  # (asked, answered): each grant happened in Redis somewhere between the two
    deadline = time.monotonic() + 60  # a bound for a stalled machine, not a timing claim
    while len(granted) < 15 and time.monotonic() < deadline:  # a busy caller hammering the limiter
        asked = time.monotonic()
        if _acquired(marker):
            granted.append((asked, time.monotonic()))

    assert len(granted) == 15  # it kept granting: three windows' worth
    # Grants surely within one second of each other: one asked at `start`, the others answered
    # before start + 1 s. (Timing grants by their answers alone puts the round trip's jitter of a
    # busy machine into the count: a sixth grant 1.02 s after the first in Redis could look 0.99 s
    # apart here.)
    surely_within_a_second = max(
        sum(1 for _, answered in granted[i:] if answered < start + 1.0)
        for i, (start, _) in enumerate(granted)
    )
    assert surely_within_a_second <= 5


def test_integrations_without_a_configured_rate_are_not_limited(settings, marker):
    settings.RATE_LIMITS = {}

    for _ in range(100):
        ratelimit.acquire(marker)


@pytest.fixture
def fallback(monkeypatch):
    """A fresh per-process fallback (no outage remembered from another test), no worker count."""
    fresh = ratelimit.Fallback("integrations", counter=lambda: None)
    monkeypatch.setattr(ratelimit, "_fallback", fresh)
    return fresh


def _fallback_gauge(limiter: str) -> float | None:
    return REGISTRY.get_sample_value("platform_rate_limit_fallback", {"limiter": limiter})


def test_with_redis_down_each_process_keeps_its_share_then_the_shared_window_returns(
    settings, private_redis, marker, fallback, caplog
):
    """Issue 21: Redis away no longer stops the calls (it used to defer them for as long as Redis
    was down); each process keeps limit / processes (here the floor, 4: 8/s -> 2/s), announced
    once, and the shared window is used again once Redis answers."""
    settings.RATE_LIMITS = {marker: "8/s"}
    settings.RATE_LIMIT_FALLBACK_PROCESSES = 4
    _point_cache_at(settings, private_redis.url)
    ratelimit.acquire(marker)  # Redis up: the shared window, and this process is seen
    assert fallback.processes_seen == 1 and not fallback.active
    private_redis.stop()

    granted = []
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        if _acquired(marker):
            granted.append(time.monotonic())
    assert len(granted) >= 4  # it kept granting: the calls go out, not deferred
    assert max(sum(1 for t in granted if start <= t < start + 1.0) for start in granted) <= 2
    assert _fallback_gauge("integrations") == 1.0
    announced = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(announced) == 1, [r.getMessage() for r in announced]  # once per outage, not per call
    assert "1/4 of the limit" in announced[0].getMessage()

    private_redis.start()
    # Redis is asked again REDIS_DOWN_RETRY_AFTER after the last failure; then the shared window.
    wait_until(
        lambda: _acquired(marker) and not fallback.active, timeout=ratelimit.REDIS_DOWN_RETRY_AFTER + 3
    )
    assert _fallback_gauge("integrations") == 0.0
    assert any("back to the shared limit" in r.getMessage() for r in caplog.records)
    client = redis.Redis.from_url(private_redis.url)
    assert client.zcard(f"ratelimit:{marker}") >= 1  # slots are taken in Redis again


@pytest.mark.parametrize("used_before_the_outage", [True, False], ids=["used-before", "first-used-during"])
def test_the_slots_taken_while_redis_was_away_count_in_the_shared_window_when_it_returns(
    settings, private_redis, marker, fallback, used_before_the_outage
):
    """The limit holds across Redis's return: the first shared round trip after the outage carries
    in every slot this process took within the window's span, those it took on its own while Redis
    was away (for a limit first used during the outage too) and the one it took before, which the
    restarted Redis (nothing on disk) forgot. Without the carry, the shared window would start
    empty and grant the whole limit again. A 10-minute window: the whole test fits in one."""
    settings.RATE_LIMITS = {marker: "4/10m"}
    settings.RATE_LIMIT_FALLBACK_PROCESSES = 2  # this process's share while Redis is away: 2
    _point_cache_at(settings, private_redis.url)
    if used_before_the_outage:
        assert _acquired(marker)  # the shared window
    private_redis.stop()
    assert [_acquired(marker) for _ in range(3)] == [True, True, False]  # its share, 2, then no more
    private_redis.start()

    granted_after = []
    wait_until(
        lambda: (_acquired(marker) and granted_after.append(1)) or not fallback.active,
        timeout=ratelimit.REDIS_DOWN_RETRY_AFTER + 3,
    )
    while _acquired(marker):
        granted_after.append(1)
    taken_before = 1 if used_before_the_outage else 0
    assert len(granted_after) == 4 - taken_before - 2
    client = redis.Redis.from_url(private_redis.url)
    assert client.zcard(f"ratelimit:{marker}") == 4  # the slots carried in and those after


def test_the_fallback_divides_by_the_most_processes_it_knows_of(settings, fallback):
    settings.RATE_LIMIT_FALLBACK_PROCESSES = 2
    assert fallback.processes() == 2
    fallback.processes_seen = 3
    assert fallback.processes() == 3
    counted = ratelimit.Fallback("integrations", counter=lambda: lambda: 6)
    counted.processes_seen = 3
    assert counted.processes() == 6
    # More processes than the limit allows: one slot each, over a longer window.
    rate = ratelimit.Rate(limit=3, period=1.0)
    assert counted.take("x", rate) == 0.0
    wait = counted.take("x", rate)
    assert 1.9 < wait <= 2.0 * (1 + settings.RATE_LIMIT_WINDOW_MARGIN)
