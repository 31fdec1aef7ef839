"""Masking of personal data and secrets for log lines: phone numbers and API keys."""

from __future__ import annotations

import re

_PHONE = re.compile(r"\+?\d[\d\s().-]{5,}\d")
# An E.164 number on its own: '+' and 8 to 15 digits, not inside a longer token.
_E164 = re.compile(r"(?<![\w+])\+[1-9]\d{7,14}(?!\d)")


def mask_phone(value: str | None) -> str:
    """'+14165550123' -> '+1416*****23'; 'whatsapp:+14165550123' keeps its prefix.

    Keeps the country and area code (enough to see where a message went) and the last two
    digits (enough to tell two numbers apart), never the whole subscriber number."""
    if not value:
        return ""
    prefix, _, number = value.rpartition(":")
    prefix = f"{prefix}:" if prefix else ""
    digits = re.sub(r"\D", "", number)
    plus = "+" if number.strip().startswith("+") else ""
    if len(digits) <= 6:
        return f"{prefix}{plus}{'*' * len(digits)}"
    return f"{prefix}{plus}{digits[:4]}{'*' * (len(digits) - 6)}{digits[-2:]}"


def mask_phones_in(text: str) -> str:
    """Mask every phone-number-like run in free text (message bodies, error messages)."""
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text or "")


def mask_e164_in(text: str) -> str:
    """Mask E.164 numbers only (for structured data such as task arguments, where the loose
    matching of mask_phones_in would also mask ids, amounts and dates)."""
    return _E164.sub(lambda m: mask_phone(m.group(0)), text or "")


def mask_secret(value: str | None) -> str:
    """'sk_test_51Habc...xyz' -> 'sk_test_…xyz': a key's kind and its last three characters."""
    if not value:
        return ""
    kind = value.rsplit("_", 1)[0] + "_" if "_" in value[:12] else ""
    return f"{kind}…{value[-3:]}" if len(value) > 8 else "…"
