"""SEALED_ARGUMENT_KEYS read from its text (config/settings/base.py; the ring itself: jobs/sealing.py).

Imported by the settings, so it imports nothing of Django's that needs them."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured


def sealing_key_ring(value: str, secret_key: str) -> list[str]:
    """Fernet keys, comma-separated, each checked here (the error names its position, never the
    key); empty: one key derived from SECRET_KEY, so `make run` and the tests need nothing set
    (production requires the setting: config/settings/production.py)."""
    if not value.strip():
        digest = hashlib.sha256(b"platform.sealed-arguments:" + secret_key.encode()).digest()
        return [base64.urlsafe_b64encode(digest).decode()]
    keys = [key.strip() for key in value.split(",") if key.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(
                f"SEALED_ARGUMENT_KEYS: key {position} of {len(keys)} is not a Fernet key (32 url-safe "
                "base64-encoded bytes: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            ) from None
    return keys
