"""API keys: create (shown once), authenticate in constant time, revoke at once.

A key looks like `pk_<prefix>_<secret>`: the prefix (8 hex digits, not secret) finds the row,
the secret is 32 random bytes (256 bits). Only SHA-256 of the whole key is stored. A slow,
salted password hash (bcrypt, PBKDF2) exists to make guessing *low-entropy* passwords expensive;
a 256-bit random secret cannot be guessed whatever the hash costs, so one SHA-256 is the field
standard (GitHub, Stripe-style tokens) and keeps authentication at microseconds per request.

Constant time: every presented key, well-formed or not, known prefix or not, costs exactly one
SHA-256 and one `hmac.compare_digest` of two full-length digests; an unknown prefix is compared
against a dummy digest instead of returning early. What remains observable is whether a prefix
exists (one indexed lookup), and prefixes are not secret.

Validity is cached in each process for at most API_KEY_CACHE_SECONDS (1 s: the contract's "a
revoked key is refused within a second", docs/contract.md section 3), so a request under load
reads no row. A revocation made through this module (`revoke_api_key`, the admin action) also
forgets the key in its own process at once and bumps a generation number in REDIS_URL; the rate
limiter's one Redis script returns that number with every request (http_api/ratelimit.py), and a
process that sees it move forgets its cache and reads the row again: other processes refuse the
key on their next request too. The time bound holds without Redis (the limiter falls back to a
per-process budget, and the cache's second still bounds how long a revoked key is honoured).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from datetime import timedelta
from hmac import compare_digest

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from http_api.models import ApiKey

# Bound here so tests can count calls; these are the standard library's functions.
sha256 = hashlib.sha256

KEY_RE = re.compile(r"^pk_(?P<prefix>[0-9a-f]{8})_(?P<secret>[A-Za-z0-9_-]{43})$")
# Compared against when no row matches, so a miss costs what a hit costs.
_DUMMY_DIGEST = hashlib.sha256(b"no such key").hexdigest()
# last_used_at is written at most this often per key: no write per request.
LAST_USED_RESOLUTION = timedelta(seconds=60)
# Bumped in REDIS_URL by every revocation; read back by the rate limiter's script on each request.
GENERATION_KEY = "api-keys:generation"
# Most keys one process keeps (a few calling services in practice; a bound against odd traffic).
CACHE_MAX_ENTRIES = 1024

logger = logging.getLogger(__name__)

# prefix -> (row, monotonic time it was read). Rows are read-only once cached, but for
# last_used_at (note_use). Plain dict operations: safe across gthread threads.
_cache: dict[str, tuple[ApiKey, float]] = {}
# The revocation generation this process last saw (None: not seen yet).
_generation: int | None = None


class ApiKeyError(Exception):
    """A key cannot be created or revoked as asked (message says why)."""


def digest(key: str) -> str:
    return sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create_api_key(*, name: str) -> tuple[ApiKey, str]:
    """A new key for `name`: returns the row and the key itself, which is never stored."""
    name = name.strip()
    if not name:
        raise ApiKeyError("a key needs a name")
    for _ in range(5):  # a prefix collision (1 in 4 billion) just draws again
        prefix = secrets.token_hex(4)
        key = f"pk_{prefix}_{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                if ApiKey.objects.filter(name=name).exists():
                    raise ApiKeyError(f"a key named {name!r} already exists")
                row = ApiKey.objects.create(name=name, prefix=prefix, hashed_secret=digest(key))
            return row, key
        except IntegrityError:
            if ApiKey.objects.filter(name=name).exists():
                raise ApiKeyError(f"a key named {name!r} already exists") from None
    raise ApiKeyError("could not draw a unique prefix")  # pragma: no cover


def revoke_api_key(*, name: str) -> ApiKey:
    """Disable the key named `name` from the next request on. Revoking twice is harmless."""
    if not ApiKey.objects.filter(name=name).exists():
        raise ApiKeyError(f"no key named {name!r}")
    ApiKey.objects.filter(name=name, revoked_at__isnull=True).update(revoked_at=timezone.now())
    row = ApiKey.objects.get(name=name)
    forget(row.prefix)
    return row


def forget(*prefixes: str) -> None:
    """A key changed (revoked): drop it from this process's cache, and tell the others through
    the generation number in REDIS_URL (see the module docstring)."""
    for prefix in prefixes:
        _cache.pop(prefix, None)
    try:
        get_redis_connection("default").incr(GENERATION_KEY)
    except (RedisError, OSError) as exc:  # the others still refuse it within the cache's lifetime
        logger.warning("could not announce an API key revocation (%s)", type(exc).__name__)


def note_generation(generation: int | None) -> None:
    """The revocation generation as Redis has it now: a new one empties this process's cache."""
    global _generation
    if generation is None or generation == _generation:
        return
    if _generation is not None:
        _cache.clear()
    _generation = generation


def cache_seconds() -> float:
    """How long a process may trust a key it read: never more than the contract's second."""
    return min(float(settings.API_KEY_CACHE_SECONDS), 1.0)


def _row_for(prefix: str) -> ApiKey | None:
    now = time.monotonic()
    cached = _cache.get(prefix)
    if cached is not None and now - cached[1] < cache_seconds():
        return cached[0]
    row = ApiKey.objects.filter(prefix=prefix).first()
    if row is None:
        _cache.pop(prefix, None)  # unknown prefixes are not kept: anyone can send those
        return None
    if len(_cache) >= CACHE_MAX_ENTRIES:
        _cache.clear()
    _cache[prefix] = (row, now)
    return row


def authenticate(presented: str | None) -> ApiKey | None:
    """The active key matching `presented`, else None, in constant time (module docstring)."""
    presented = presented or ""
    match = KEY_RE.match(presented)
    row = None
    if match:
        row = _row_for(match.group("prefix"))
    expected = row.hashed_secret if row is not None else _DUMMY_DIGEST
    # Always one hash and one full-length comparison, whatever was found above.
    matches = compare_digest(digest(presented), expected)
    if not matches or row is None or row.revoked_at is not None:
        return None
    note_use(row)
    return row


def note_use(row: ApiKey) -> None:
    """Stamp last_used_at if it is older than a minute; one conditional UPDATE, so several
    processes noticing at once still write once."""
    now = timezone.now()
    if row.last_used_at is not None and now - row.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiKey.objects.filter(pk=row.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)
    row.last_used_at = now


def revoked_since_authenticated(request) -> bool:
    """True when the key `request` was authenticated with has been revoked since: the rate
    limiter saw the revocation generation move (note_generation emptied the cache) after
    authenticate() ran. Reads the row only then."""
    row = getattr(request, "auth", None)
    if not isinstance(row, ApiKey) or row.prefix in _cache:
        return False
    fresh = _row_for(row.prefix)
    return fresh is None or fresh.revoked_at is not None or fresh.hashed_secret != row.hashed_secret
