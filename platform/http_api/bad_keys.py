"""Repeated bad API keys from one address are slowed down (docs/security.md).

Each address has a budget of bad keys, API_BAD_KEY_RATE ("10/m": ten at once, then one every six
seconds), kept in Redis as a GCRA bucket of the per-key limit's own kind (http_api/ratelimit.py:
`take` spends it, `peek` reads it without spending) and spent only by a key that fails. While the
budget is spent, a request from that address is answered 429 `rate_limited` with Retry-After
before its key is looked at, so guessing goes no faster than the budget, and a correct key from
that address waits too. A request with no key spends nothing.

Redis unreachable: keys are checked as usual and nothing is slowed (a 256-bit key cannot be
guessed anyway; this bounds noise and load, and a cache outage must not refuse every caller).
"""

from __future__ import annotations

import logging
import math

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError

from http_api import ratelimit
from http_api.errors import ApiError
from integrations.ratelimit import Rate

logger = logging.getLogger(__name__)


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
    try:
        wait = ratelimit.peek(bucket(address), rate())
    except (RedisError, OSError) as exc:
        logger.info("bad-key throttle skipped: Redis unreachable (%s)", type(exc).__name__)
        return
    if wait > 0:
        wait = math.ceil(wait)
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
