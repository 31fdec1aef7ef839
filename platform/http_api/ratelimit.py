"""Requests per API key, counted in Redis so every web process shares one budget (API_RATE_LIMIT).

GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp): a key may spend its
whole budget in a burst, then one request per (period / limit). One Lua script on Redis's clock
does check-and-take atomically, O(1) per request, and tells exactly when the next request fits,
which becomes Retry-After.

Why not integrations/ratelimit.py's sliding window: that one protects providers that count "N
per second" strictly (bursts forbidden) and costs a sorted-set member per call; an API budget per
caller is about fairness and capacity, where a bucket's burst is the point. Like it, on a Redis
error this limiter falls back to a conservative budget per web process (integrations/ratelimit.py
`Fallback`: the limit divided by the web processes last seen sharing it, at least
RATE_LIMIT_FALLBACK_PROCESSES), announced once in the log and as platform_rate_limit_fallback{limiter="api"}
in /metrics: a cache outage must not turn into refusing every API call, nor into no limit at all
(POST /api/v1/jobs answers 503 by itself when the broker, the same Redis, is down). After an error
it stops asking Redis for a few seconds, so a hung Redis costs one timeout, not one per request;
the first answer after that puts the shared bucket back in charge.

Leases: where the budget is large (more than one request per LEASE_SECONDS), a web process takes
the requests that fit in LEASE_SECONDS from the shared bucket in one round trip and spends them
itself until they run out or LEASE_SECONDS pass; leftovers lapse (a client loses at most that
slice of its budget per process, never gains any). At a budget of one request per 50 ms or less
(API_RATE_LIMIT's default, 600/m, is one per 100 ms) every request asks Redis, as before.
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

from http_api import conf, keys
from integrations.ratelimit import Fallback, Rate, process_name

logger = logging.getLogger(__name__)

# KEYS[1]: the key's theoretical arrival time (TAT), microseconds; KEYS[2]: the API keys'
# revocation generation (http_api/keys.py), returned so that the same round trip tells a web
# process a key was revoked. ARGV: emission interval (period/limit, us), burst allowance
# ((limit-1) * interval, us), requests wanted (a lease: as many of them as fit, at least one),
# this process's name, kept in KEYS[3] (PROCESSES_KEY) with the time it was last seen.
# Returns {granted, 0, generation, processes} when allowed, else {0, microseconds until a request
# fits, generation, processes}; processes: web processes seen in the last 5 minutes.
_GCRA = """
local generation = tonumber(redis.call('GET', KEYS[2]) or 0)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZADD', KEYS[3], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 300000000)
redis.call('PEXPIRE', KEYS[3], 600000)
local processes = redis.call('ZCARD', KEYS[3])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - burst
if now < allow_at then
  return {0, allow_at - now, generation, processes}
end
local granted = math.max(1, math.min(tonumber(ARGV[3]), math.floor((now - allow_at) / interval) + 1))
local new_tat = tat + granted * interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {granted, 0, generation, processes}
"""
# KEYS[1]: a bucket's TAT, as _GCRA keeps it; ARGV[1]: its burst allowance (us), as _GCRA is given
# it. Takes nothing; returns the microseconds until a request would fit (0: one fits now).
_PEEK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local allow_at = tat - tonumber(ARGV[1])
if now < allow_at then return allow_at - now end
return 0
"""
PROCESSES_KEY = "api-ratelimit:processes"

# script source -> its registration (redis-py Script) on the client it was registered with.
_registered: dict[str, object] = {}
# While Redis is away: this process's share of each key's budget (web processes: no worker count).
_fallback = Fallback("api", counter=lambda: None)
# Where authentication leaves what it took from the key's budget (http_api/api.py): the same
# round trip that tells a revoked key, not a second one.
TAKEN_ATTRIBUTE = "_api_rate_limit_wait"
# A lease (module docstring) lives this long: the slice of a budget a process may hold unused.
LEASE_SECONDS = 0.05
# bucket -> [requests left, monotonic time the lease lapses]; per process, shared by its threads.
_leases: dict[str, list[float]] = {}
_leases_lock = threading.Lock()


def lease_size(current: Rate) -> int:
    """Requests one round trip takes: those that fit in LEASE_SECONDS at this rate (at least one)."""
    return max(1, int(current.limit * LEASE_SECONDS / current.period))


def _from_lease(bucket: str) -> bool:
    with _leases_lock:
        lease = _leases.get(bucket)
        if lease is None or lease[0] < 1 or time.monotonic() >= lease[1]:
            return False
        lease[0] -= 1
        return True


def bucket_key(bucket: str) -> str:
    """The Redis key that holds `bucket`'s theoretical arrival time."""
    return f"api-ratelimit:{bucket}"


def _interval_us(current: Rate) -> float:
    """The GCRA emission interval: one request every period / limit, in microseconds."""
    return current.period * 1_000_000 / current.limit


def _burst_us(current: Rate) -> int:
    """The burst allowance: the whole budget may be spent at once, (limit - 1) intervals."""
    return int(_interval_us(current) * (current.limit - 1))


def rate() -> Rate:
    try:
        return Rate.parse(conf.rate_limit())
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"API_RATE_LIMIT: {exc}") from None


def take(bucket: str, budget: Rate | None = None) -> float:
    """Take one request from `bucket`: 0.0 when allowed, else seconds until one fits. Notes the
    API keys' revocation generation on the way (keys.note_generation). `budget`: the bucket's
    rate, API_RATE_LIMIT unless given (http_api/bad_keys.py counts bad keys at its own)."""
    if _from_lease(bucket):
        return 0.0
    current = budget or rate()
    if _fallback.redis_resting():
        return _fallback.take(bucket, current)
    wanted = lease_size(current)
    try:
        granted, wait_us, generation, processes = _script(_GCRA)(
            keys=[bucket_key(bucket), keys.GENERATION_KEY, PROCESSES_KEY],
            args=[int(_interval_us(current)), _burst_us(current), wanted, process_name()],
        )
    except (RedisError, OSError) as exc:
        _fallback.redis_failed(exc)
        return _fallback.take(bucket, current)
    _fallback.redis_answered(int(processes))
    keys.note_generation(int(generation))
    if int(granted) > 1:
        with _leases_lock:
            _leases[bucket] = [int(granted) - 1, time.monotonic() + LEASE_SECONDS]
    return 0.0 if int(granted) else max(int(wait_us) / 1_000_000, 0.001)


def peek(bucket: str, budget: Rate) -> float:
    """Seconds until `bucket` (kept by take at rate `budget`) would allow a request: 0.0 when one
    fits now. Takes nothing and holds no lease. Reads the shared bucket only: a Redis error
    (RedisError, OSError) is the caller's to handle."""
    wait_us = int(_script(_PEEK)(keys=[bucket_key(bucket)], args=[_burst_us(budget)]))
    return wait_us / 1_000_000 if wait_us > 0 else 0.0


def _script(source: str):
    """A script of this module, sent by its SHA (EVALSHA) and loaded once per Redis client."""
    client = get_redis_connection("default")
    script = _registered.get(source)
    if script is None or script.registered_client is not client:
        script = _registered[source] = client.register_script(source)
    return script


def reset(bucket: str) -> None:
    with _leases_lock:
        _leases.pop(bucket, None)
    get_redis_connection("default").delete(bucket_key(bucket))


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
        wait = getattr(request, TAKEN_ATTRIBUTE, None)
        self._local.wait = take(f"key:{key.prefix}") if wait is None else wait
        return self._local.wait == 0.0

    def wait(self) -> float | None:
        wait = getattr(self._local, "wait", 0.0)
        return math.ceil(wait) if wait else None
