"""Rate limits per integration shared by every worker on every machine: a sliding window in Redis.

`acquire("twilio")` takes one slot or raises `RateLimited(retry_after=...)`, which the task base
turns into a reschedule with that countdown: no worker ever sleeps waiting for a slot.

Why a sliding window and not a token bucket: a bucket of capacity N refilled at N per second
lets through N at once and then N more as it refills, up to 2N-1 in one second, which is exactly
what a provider's "N per second" forbids. The window keeps every (period x (1 + margin)) span at
N or fewer; the margin absorbs jitter between our clock and the moment the provider counts.
The check-and-take runs as one Lua script on Redis's own clock: atomic, and immune to skew
between machines.

While Redis is unreachable the limit is not shared, so each process falls back to a conservative
budget of its own (`Fallback` below): the limit divided by the processes that may be calling it,
that is the most of (the processes last seen using a limiter while Redis answered, the live
worker processes the registered counter reports, RATE_LIMIT_FALLBACK_PROCESSES). The limits still
protect money and the sender's standing with Twilio, and jobs keep going: a Redis outage on
RabbitMQ stops no send (docs/redis-outage.md). The switch is announced once per outage in the log
and as platform_rate_limit_fallback in /metrics; Redis is asked again every
REDIS_DOWN_RETRY_AFTER seconds, and the shared window is used as soon as it answers. Its first
round trip for each limit after an outage carries into the shared window the slots this process
took during the window's span (while Redis was away, and before, which a restarted Redis has
forgotten), so the limit holds across the return too.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django_redis import get_redis_connection
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from integrations.errors import RateLimited

logger = logging.getLogger(__name__)

RATE_LIMIT_DECISIONS = Counter(
    "platform_integration_rate_limit_total",
    "Slots asked of the shared integration rate limiter, by outcome.",
    [
        "integration",
        "outcome",
    ],  # outcome: allowed | limited | redis_error | fallback_allowed | fallback_limited
)
RATE_LIMIT_FALLBACK = Gauge(
    "platform_rate_limit_fallback",
    "1 while a shared rate limit runs on a per-process budget because Redis is unreachable.",
    ["limiter"],
    multiprocess_mode="livemax",
)
RATE_LIMIT_FALLBACK_PROCESSES = Gauge(
    "platform_rate_limit_fallback_processes",
    "Processes a shared limit is divided among while it runs on a per-process budget.",
    ["limiter"],
    multiprocess_mode="livemax",
)

# KEYS[1] the window's sorted set; KEYS[2] the processes seen using a limiter (PROCESSES_KEY);
# ARGV: limit, window in microseconds, a unique member, this process's name, then any slots this
# process carries in after an outage, as pairs (microseconds ago, member): added at their own time
# (a member Redis still holds only moves to it).
# Returns {1, 0, processes} when a slot was taken, else {0, microseconds until the oldest slot
# expires, processes}; processes: how many took part in the last PROCESS_SEEN_SECONDS.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 300000000)
redis.call('PEXPIRE', KEYS[2], 600000)
local processes = redis.call('ZCARD', KEYS[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
for i = 5, #ARGV, 2 do
  local at = now - tonumber(ARGV[i])
  if at > now - window then
    redis.call('ZADD', KEYS[1], at, ARGV[i + 1])
  end
end
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return {1, 0, processes}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now, processes}
"""
# Every process that used a shared limit in the last 5 minutes (the script above keeps it).
PROCESSES_KEY = "ratelimit:processes"

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")
# While Redis is unreachable, it is asked again after this long (meanwhile: the fallback budget).
REDIS_DOWN_RETRY_AFTER = 5.0
# How long the live worker processes reported by the registered counter are trusted.
PROCESS_COUNT_TTL = 60.0


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


def window_seconds(rate: Rate) -> float:
    """The span a limit is kept over: its period plus RATE_LIMIT_WINDOW_MARGIN (module docstring)."""
    return rate.period * (1 + float(settings.RATE_LIMIT_WINDOW_MARGIN))


def rate_for(integration: str) -> Rate | None:
    """The configured rate of an integration, or None when it has no limit."""
    text = settings.RATE_LIMITS.get(integration)
    return Rate.parse(text) if text else None


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# Who reports the live worker processes without Redis (jobs/rate_budget.py registers Celery's
# own inspect, which answers over the broker): a callable returning a count, or None.
_process_counter: Callable[[], int | None] | None = None


def set_process_counter(counter: Callable[[], int | None] | None) -> None:
    global _process_counter
    _process_counter = counter


class Fallback:
    """One shared limiter's per-process stand-in while Redis is away (module docstring).

    Knows the processes last seen sharing the limit (from each successful round trip), announces
    the outage once and its end once, and while it lasts answers from a sliding window of this
    process's own: floor(limit / processes) slots per period (at least one slot, over a longer
    period when there are more processes than the limit allows).

    It also remembers every slot this process took, shared or its own, for one window's span: the
    outage's end carries them into the shared window (`carried_in`), one limit at a time."""

    def __init__(self, limiter: str, *, counter: Callable[[], Callable[[], int | None] | None]) -> None:
        self.limiter = limiter
        self._counter = counter
        self._lock = threading.Lock()
        self.active = False
        self.down_until = 0.0
        self.processes_seen: int | None = None  # from the last successful round trip
        self._counted: tuple[float, int | None] | None = None  # (when, live worker processes)
        self._windows: dict[str, deque[float]] = {}
        self._taken: dict[str, deque[tuple[float, str]]] = {}  # key -> (monotonic time, member)
        self._carry_due: set[str] = set()  # keys whose first shared round trip carries _taken in

    def redis_answered(self, processes: int | None = None) -> None:
        if processes:
            self.processes_seen = int(processes)
        if self.active:
            with self._lock:
                if self.active:
                    self.active = False
                    self._windows.clear()
                    RATE_LIMIT_FALLBACK.labels(self.limiter).set(0)
                    logger.warning(
                        "rate limiter for %s: Redis answers again, back to the shared limit", self.limiter
                    )

    def redis_failed(self, exc: BaseException) -> None:
        with self._lock:
            self.down_until = time.monotonic() + REDIS_DOWN_RETRY_AFTER
            if self.active:
                return
            self.active = True
            self._carry_due = set(self._taken)
        processes = self.processes()
        RATE_LIMIT_FALLBACK.labels(self.limiter).set(1)
        logger.warning(
            "rate limiter for %s: Redis unreachable (%s), each process now keeps 1/%d of the limit "
            "until it answers again",
            self.limiter,
            type(exc).__name__,
            processes,
        )

    def took(self, key: str, member: str, window: float) -> None:
        """Remember a slot this process took (in the shared window or its own) for `window` seconds."""
        now = time.monotonic()
        with self._lock:
            if self.active:  # a limit first used during the outage is carried in too
                self._carry_due.add(key)
            taken = self._taken.setdefault(key, deque())
            taken.append((now, member))
            while taken[0][0] <= now - window:
                taken.popleft()

    def to_carry(self, key: str) -> list[str | int]:
        """For the first shared round trip of `key` after an outage: the slots this process took,
        as the script's (microseconds ago, member) pairs; otherwise nothing."""
        if key not in self._carry_due:
            return []
        now = time.monotonic()
        with self._lock:
            taken = list(self._taken.get(key, ()))
        return [part for at, member in taken for part in (int((now - at) * 1_000_000), member)]

    def carried_in(self, key: str) -> None:
        self._carry_due.discard(key)

    def redis_resting(self) -> bool:
        """True while Redis failed less than REDIS_DOWN_RETRY_AFTER ago: don't ask it yet."""
        return self.active and time.monotonic() < self.down_until

    def processes(self) -> int:
        """The processes the limit is divided among: the most of every count we have."""
        now = time.monotonic()
        if self._counted is None or now - self._counted[0] >= PROCESS_COUNT_TTL:
            counter = self._counter()
            live = None
            if counter is not None:
                try:
                    live = counter()
                except Exception as exc:  # a count we cannot get is one we don't use
                    logger.info("rate limiter for %s: live processes unknown: %r", self.limiter, exc)
            # A failed count keeps the last good one.
            self._counted = (now, live if live else (self._counted[1] if self._counted else None))
        counts = [self.processes_seen, self._counted[1], int(settings.RATE_LIMIT_FALLBACK_PROCESSES)]
        processes = max(1, *(count for count in counts if count))
        RATE_LIMIT_FALLBACK_PROCESSES.labels(self.limiter).set(processes)
        return processes

    def take(self, key: str, rate: Rate) -> float:
        """One slot of this process's share of `rate`: 0.0, or seconds until one is free."""
        processes = self.processes()
        slots = max(1, rate.limit // processes)
        # More processes than the limit: one slot each, over as many periods as that takes.
        period = rate.period * max(1.0, slots * processes / rate.limit)
        window = window_seconds(Rate(limit=slots, period=period))
        now = time.monotonic()
        with self._lock:
            taken = self._windows.setdefault(key, deque())
            while taken and taken[0] <= now - window:
                taken.popleft()
            if len(taken) < slots:
                taken.append(now)
                return 0.0
            return max(taken[0] + window - now, 0.01)


_fallback = Fallback("integrations", counter=lambda: _process_counter)


def acquire(integration: str) -> None:
    """Take one slot of `integration`'s shared limit, or raise RateLimited(retry_after=seconds)."""
    rate = rate_for(integration)
    if rate is None:
        return
    window = window_seconds(rate)
    window_us = int(window * 1_000_000)
    if _fallback.redis_resting():
        _fallback_acquire(integration, rate)
        return
    member = uuid.uuid4().hex
    try:
        client = get_redis_connection("default")
        allowed, wait_us, processes = client.eval(
            _SLIDING_WINDOW,
            2,
            f"ratelimit:{integration}",
            PROCESSES_KEY,
            rate.limit,
            window_us,
            member,
            process_name(),
            *_fallback.to_carry(integration),
        )
    except (RedisError, OSError) as exc:
        RATE_LIMIT_DECISIONS.labels(integration, "redis_error").inc()
        _fallback.redis_failed(exc)
        _fallback_acquire(integration, rate)
        return
    _fallback.redis_answered(int(processes))
    _fallback.carried_in(integration)
    if allowed:
        _fallback.took(integration, member, window)
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


def _fallback_acquire(integration: str, rate: Rate) -> None:
    wait = _fallback.take(integration, rate)
    if not wait:
        _fallback.took(integration, uuid.uuid4().hex, window_seconds(rate))
        RATE_LIMIT_DECISIONS.labels(integration, "fallback_allowed").inc()
        return
    RATE_LIMIT_DECISIONS.labels(integration, "fallback_limited").inc()
    raise RateLimited(
        f"this process's share of {rate.limit} per {rate.period:g}s spent (Redis unreachable)",
        provider=integration,
        code="rate_limited",
        retry_after=wait,
    )


def reset(integration: str) -> None:
    """Forget the window of `integration` (tests and operators starting from a clean slate)."""
    get_redis_connection("default").delete(f"ratelimit:{integration}")
