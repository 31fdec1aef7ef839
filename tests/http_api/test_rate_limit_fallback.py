"""The API's per-key limit while Redis is away (issue 21): neither refused nor unlimited, but a
conservative share per web process, announced once, and the shared bucket again once Redis answers."""

import time

import pytest
import redis
from prometheus_client import REGISTRY

from http_api import ratelimit
from integrations.ratelimit import REDIS_DOWN_RETRY_AFTER, Fallback
from tests.support.processes import wait_until


@pytest.fixture
def fallback(monkeypatch):
    fresh = Fallback("api", counter=lambda: None)
    monkeypatch.setattr(ratelimit, "_fallback", fresh)
    return fresh


def test_with_redis_down_a_web_process_keeps_its_share_of_a_keys_budget(
    settings, private_redis, marker, fallback, caplog
):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": private_redis.url}}
    settings.API_RATE_LIMIT = "8/s"
    settings.RATE_LIMIT_FALLBACK_PROCESSES = 4
    bucket = f"key:{marker}"
    assert ratelimit.take(bucket) == 0.0  # Redis up: the shared bucket
    private_redis.stop()

    allowed = []
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        if ratelimit.take(bucket) == 0.0:
            allowed.append(time.monotonic())
        time.sleep(0.005)
    # Not failing open (every request) nor closed (none): 8/s over 4 processes, 2 per second here.
    assert 4 <= len(allowed) <= 8, len(allowed)
    assert max(sum(1 for t in allowed if start <= t < start + 1.0) for start in allowed) <= 2
    assert REGISTRY.get_sample_value("platform_rate_limit_fallback", {"limiter": "api"}) == 1.0
    assert sum("Redis unreachable" in r.getMessage() for r in caplog.records) == 1

    private_redis.start()
    wait_until(
        lambda: ratelimit.take(bucket) is not None and not fallback.active,
        timeout=REDIS_DOWN_RETRY_AFTER + 3,
        what="the shared bucket again",
    )
    assert REGISTRY.get_sample_value("platform_rate_limit_fallback", {"limiter": "api"}) == 0.0
    assert redis.Redis.from_url(private_redis.url).exists(f"api-ratelimit:{bucket}")
