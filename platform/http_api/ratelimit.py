"""Requests per API key, counted in Redis so every web process shares one budget (API_RATE_LIMIT).

GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp): a key may spend its
whole budget in a burst, then one request per (period / limit). One Lua script on Redis's clock
does check-and-take atomically, O(1) per request, and tells exactly when the next request fits,
which becomes Retry-After.

Why not integrations/ratelimit.py's sliding window: that one protects providers that count "N
per second" strictly (bursts forbidden) and costs a sorted-set member per call; an API budget per
caller is about fairness and capacity, where a bucket's burst is the point. And unlike it, this
limiter fails OPEN on a Redis error: a cache outage must not turn into refusing every API call
(POST /api/v1/jobs answers 503 by itself when the broker, the same Redis, is down). After an error
it stops asking Redis for a few seconds, so a hung Redis costs one timeout, not one per request.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django_redis import get_redis_connection
from ninja.throttling import BaseThrottle
from redis.exceptions import RedisError

from http_api import conf
from integrations.ratelimit import Rate

logger = logging.getLogger(__name__)

# KEYS[1]: the key's theoretical arrival time (TAT), microseconds. ARGV: emission interval
# (period/limit, us), burst allowance ((limit-1) * interval, us).
# Returns {1, 0} when allowed, else {0, microseconds until a request fits}.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - burst
if now < allow_at then
  return {0, allow_at - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, 0}
"""

# After a Redis error, skip the limiter this long (fail open without paying a timeout each time).
REDIS_DOWN_BACKOFF_SECONDS = 5.0
_redis_down_until = 0.0


def rate() -> Rate:
    try:
        return Rate.parse(conf.rate_limit())
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"API_RATE_LIMIT: {exc}") from None


def take(bucket: str) -> float:
    """Take one request from `bucket`: 0.0 when allowed, else seconds until one fits."""
    global _redis_down_until
    if time.monotonic() < _redis_down_until:
        return 0.0
    current = rate()
    interval_us = current.period * 1_000_000 / current.limit
    try:
        allowed, wait_us = get_redis_connection("default").eval(
            _GCRA, 1, f"api-ratelimit:{bucket}", int(interval_us), int(interval_us * (current.limit - 1))
        )
    except (RedisError, OSError) as exc:
        _redis_down_until = time.monotonic() + REDIS_DOWN_BACKOFF_SECONDS
        logger.warning("API rate limiter unavailable (%s): letting requests through", type(exc).__name__)
        return 0.0
    return 0.0 if allowed else max(int(wait_us) / 1_000_000, 0.001)


def reset(bucket: str) -> None:
    get_redis_connection("default").delete(f"api-ratelimit:{bucket}")


class ApiKeyThrottle(BaseThrottle):
    """ninja throttle: one bucket per API key (auth runs first, so request.auth is the key).
    ninja answers 429 through errors.py and sets Retry-After from wait()."""

    def __init__(self) -> None:
        # ninja keeps one throttle object per operation and asks wait() right after
        # allow_request(): per thread, so concurrent requests (gthread) don't mix their waits.
        self._local = threading.local()

    def allow_request(self, request: HttpRequest) -> bool:
        key = getattr(request, "auth", None)
        if key is None:
            return True
        self._local.wait = take(f"key:{key.prefix}")
        return self._local.wait == 0.0

    def wait(self) -> float | None:
        wait = getattr(self._local, "wait", 0.0)
        return math.ceil(wait) if wait else None
