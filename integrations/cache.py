"""The one way services read and write the cache: TTLs from settings.CACHE_TTLS, hits and misses
counted per kind of data, and a dead Redis reads as a miss (django-redis IGNORE_EXCEPTIONS)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from prometheus_client import REGISTRY, Counter

T = TypeVar("T")

CACHE_REQUESTS = Counter(
    "platform_cache_requests_total",
    "Cache reads through integrations.cache, by kind of data and result.",
    ["kind", "result"],  # result: hit | miss
)

_MISSING = object()


def cache_key(kind: str, key: str) -> str:
    return f"{kind}:{key}"


def ttl_for(kind: str) -> int:
    """Seconds a `kind` of data lives in the cache (settings.CACHE_TTLS, the one table)."""
    return int(settings.CACHE_TTLS[kind])


def cache_get(kind: str, key: str) -> tuple[bool, Any]:
    """(True, value) on a hit, (False, None) on a miss, or when Redis is unreachable."""
    value = cache.get(cache_key(kind, key), _MISSING)
    if value is _MISSING:
        CACHE_REQUESTS.labels(kind, "miss").inc()
        return False, None
    CACHE_REQUESTS.labels(kind, "hit").inc()
    return True, value


def cache_set(kind: str, key: str, value: Any, *, ttl: float | None = None) -> None:
    """Store `value`; `ttl` (seconds) shortens the kind's lifetime, e.g. to what is left of it."""
    timeout = ttl_for(kind) if ttl is None else max(1, int(min(ttl, ttl_for(kind))))
    cache.set(cache_key(kind, key), value, timeout=timeout)


def cache_delete(kind: str, key: str) -> None:
    cache.delete(cache_key(kind, key))


def cached(kind: str, key: str, compute: Callable[[], T], *, ttl: float | None = None) -> T:
    """The cached value, else compute() stored for the kind's TTL. None is cached like any value."""
    hit, value = cache_get(kind, key)
    if hit:
        return value
    value = compute()
    cache_set(kind, key, value, ttl=ttl)
    return value


def cache_counts(kind: str) -> dict[str, float]:
    """This process's hit and miss counts for `kind` (for tests and the ops dashboard)."""
    return {
        result: REGISTRY.get_sample_value("platform_cache_requests_total", {"kind": kind, "result": result})
        or 0.0
        for result in ("hit", "miss")
    }
