"""Masking of secrets (API keys, tokens) for log lines and error messages. Phone numbers are masked
by identifiers.mask_phone and its kin, the one masker of the platform."""

from __future__ import annotations


def mask_secret(value: str | None) -> str:
    """'sk_test_51Habc...xyz' -> 'sk_test_…xyz': a key's kind and its last three characters."""
    if not value:
        return ""
    kind = value.rsplit("_", 1)[0] + "_" if "_" in value[:12] else ""
    return f"{kind}…{value[-3:]}" if len(value) > 8 else "…"
