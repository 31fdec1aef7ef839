"""Repeated bad API keys from one address are slowed down (docs/security.md).

Each address has a budget of bad keys, API_BAD_KEY_RATE ("10/m": ten at once, then one every six
seconds), kept in Redis as a GCRA bucket like the per-key limit (http_api/ratelimit.py) and spent
only by a key that fails. While the budget is spent, a request from that address is answered
429 `rate_limited` with Retry-After before its key is looked at, so guessing goes no faster than
the budget, and a correct key from that address waits too. A request with no key spends nothing.

Redis unreachable: keys are checked as usual and nothing is slowed (a 256-bit key cannot be
guessed anyway; this bounds noise and load, and a cache outage must not refuse every caller).
"""

from __future__ import annotations

import logging
import math

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from http_api import ratelimit
from http_api.errors import ApiError
from integrations.ratelimit import Rate

logger = logging.getLogger(__name__)

# KEYS[1]: the address's theoretical arrival time (us), as ratelimit's script keeps it; ARGV[1]: the
# burst allowance (us). Returns the microseconds until a bad key would fit again (0: it fits now).
_PEEK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local allow_at = tat - tonumber(ARGV[1])
if now < allow_at then return allow_at - now end
return 0
"""
_registered = None


def rate() -> Rate:
    try:
        return Rate.parse(settings.API_BAD_KEY_RATE)
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"API_BAD_KEY_RATE: {exc}") from None


def bucket(address: str) -> str:
    return f"bad-key:{address}"


def refuse_if_slowed(address: str | None) -> None:
    """Raise 429 when `address` has spent its bad-key budget; else return (check its key)."""
    if address is None:
        return
    current = rate()
    interval_us = current.period * 1_000_000 / current.limit
    try:
        wait_us = int(
            _peek()(keys=[f"api-ratelimit:{bucket(address)}"], args=[int(interval_us * (current.limit - 1))])
        )
    except (RedisError, OSError) as exc:
        logger.info("bad-key throttle skipped: Redis unreachable (%s)", type(exc).__name__)
        return
    if wait_us > 0:
        wait = math.ceil(wait_us / 1_000_000)
        raise ApiError(
            429,
            "rate_limited",
            "Too many requests with a bad API key from this address; retry later.",
            {"retry_after": wait},
            headers={"Retry-After": str(wait)},
        )


def note_bad_key(address: str | None) -> None:
    """A key from `address` failed: spend one of its bad-key budget."""
    if address is not None:
        ratelimit.take(bucket(address), rate())


def _peek():
    global _registered
    client = get_redis_connection("default")
    if _registered is None or _registered.registered_client is not client:
        _registered = client.register_script(_PEEK)
    return _registered
