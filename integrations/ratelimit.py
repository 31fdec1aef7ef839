"""Rate limits per integration shared by every worker on every machine: a sliding window in Redis.

`acquire("twilio")` takes one slot or raises `RateLimited(retry_after=...)`, which the task base
turns into a reschedule with that countdown: no worker ever sleeps waiting for a slot.

Why a sliding window and not a token bucket: a bucket of capacity N refilled at N per second
lets through N at once and then N more as it refills, up to 2N-1 in one second, which is exactly
what a provider's "N per second" forbids. The window keeps every (period x (1 + margin)) span at
N or fewer; the margin absorbs jitter between our clock and the moment the provider counts.
The check-and-take runs as one Lua script on Redis's own clock: atomic, and immune to skew
between machines.

On a Redis error the limiter fails CLOSED (raises RateLimited): the limits protect money (paid
vehicle-history calls) and the sender's standing with Twilio, and a closed limiter costs only a
delay, because the job is rescheduled, never dropped.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django_redis import get_redis_connection
from prometheus_client import Counter
from redis.exceptions import RedisError

from integrations.errors import RateLimited

logger = logging.getLogger(__name__)

RATE_LIMIT_DECISIONS = Counter(
    "platform_integration_rate_limit_total",
    "Slots asked of the shared integration rate limiter, by outcome.",
    ["integration", "outcome"],  # outcome: allowed | limited | redis_error
)

# KEYS[1] the window's sorted set; ARGV: limit, window in microseconds, a unique member.
# Returns {1, 0} when a slot was taken, else {0, microseconds until the oldest slot expires}.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now}
"""

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")
# While Redis is unreachable, callers come back after this long.
REDIS_DOWN_RETRY_AFTER = 5.0


@dataclass(frozen=True)
class Rate:
    limit: int
    period: float  # seconds

    @classmethod
    def parse(cls, text: str) -> Rate:
        """'10/s' -> 10 per second; '30/m', '500/h', '5/10s' also work."""
        match = _RATE.match(str(text).lower())
        if not match or match.group(3) not in _PERIODS or int(match.group(1)) < 1:
            raise ImproperlyConfigured(f"RATE_LIMITS: {text!r} is not a rate like '10/s' or '30/m'")
        multiple = int(match.group(2) or 1)
        return cls(limit=int(match.group(1)), period=float(multiple * _PERIODS[match.group(3)]))


def rate_for(integration: str) -> Rate | None:
    """The configured rate of an integration, or None when it has no limit."""
    text = settings.RATE_LIMITS.get(integration)
    return Rate.parse(text) if text else None


def acquire(integration: str) -> None:
    """Take one slot of `integration`'s shared limit, or raise RateLimited(retry_after=seconds)."""
    rate = rate_for(integration)
    if rate is None:
        return
    window_us = int(rate.period * (1 + float(settings.RATE_LIMIT_WINDOW_MARGIN)) * 1_000_000)
    try:
        client = get_redis_connection("default")
        allowed, wait_us = client.eval(
            _SLIDING_WINDOW, 1, f"ratelimit:{integration}", rate.limit, window_us, uuid.uuid4().hex
        )
    except (RedisError, OSError) as exc:
        RATE_LIMIT_DECISIONS.labels(integration, "redis_error").inc()
        logger.warning(
            "rate limiter for %s unavailable (%s): deferring the call", integration, type(exc).__name__
        )
        raise RateLimited(
            "rate limiter unavailable",
            provider=integration,
            code="limiter_unavailable",
            retry_after=REDIS_DOWN_RETRY_AFTER,
        ) from exc
    if allowed:
        RATE_LIMIT_DECISIONS.labels(integration, "allowed").inc()
        return
    RATE_LIMIT_DECISIONS.labels(integration, "limited").inc()
    # Never 0: a job rescheduled for "now" would only spin.
    retry_after = max(int(wait_us) / 1_000_000, 0.01)
    raise RateLimited(
        f"{rate.limit} per {rate.period:g}s spent",
        provider=integration,
        code="rate_limited",
        retry_after=retry_after,
    )


def reset(integration: str) -> None:
    """Forget the window of `integration` (tests and operators starting from a clean slate)."""
    get_redis_connection("default").delete(f"ratelimit:{integration}")
