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

Validity is never cached: every request reads the key's row, so `revoke_api_key` takes effect
on the next request in every process.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from hmac import compare_digest

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from http_api.models import ApiKey

# Bound here so tests can count calls; these are the standard library's functions.
sha256 = hashlib.sha256

KEY_RE = re.compile(r"^pk_(?P<prefix>[0-9a-f]{8})_(?P<secret>[A-Za-z0-9_-]{43})$")
# Compared against when no row matches, so a miss costs what a hit costs.
_DUMMY_DIGEST = hashlib.sha256(b"no such key").hexdigest()
# last_used_at is written at most this often per key: no write per request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


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
    return ApiKey.objects.get(name=name)


def authenticate(presented: str | None) -> ApiKey | None:
    """The active key matching `presented`, else None, in constant time (module docstring)."""
    presented = presented or ""
    match = KEY_RE.match(presented)
    row = None
    if match:
        row = ApiKey.objects.filter(prefix=match.group("prefix")).first()
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
