"""The one place that says what a valid VIN and a valid phone number are (models, services,
tasks and the API all reuse these), and how a phone number is masked for display and logs."""

import re

from django.core.exceptions import ValidationError

# ISO 3779: 17 characters, digits and capitals, never I, O or Q (confused with 1 and 0).
VIN_RE = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
# E.164: a plus, a country code not starting with 0, at most 15 digits in all.
E164_RE = re.compile(r"^\+[1-9]\d{7,14}$")


def normalize_vin(value: str) -> str:
    return (value or "").strip().upper()


def validate_vin(value: str) -> None:
    """Exactly 17 uppercase letters or digits, without I, O or Q. The check digit is not
    enforced: it is mandatory only for North American VINs and exports also carry others."""
    if not isinstance(value, str) or not VIN_RE.match(value):
        raise ValidationError(
            "Enter a valid VIN: 17 uppercase letters and digits, without I, O or Q.",
            code="invalid_vin",
            params={"value": value},
        )


def validate_e164_phone(value: str) -> None:
    """An E.164 number such as +14165550123 (no spaces, no 'whatsapp:' prefix)."""
    if not isinstance(value, str) or not E164_RE.match(value):
        raise ValidationError(
            "Enter a phone number in E.164 format, e.g. +14165550123.",
            code="invalid_phone",
        )


def mask_phone(value: str | None) -> str:
    """+14165550123 -> +1******0123: enough to tell numbers apart, not enough to dial one."""
    if not value:
        return ""
    value = value.removeprefix("whatsapp:")
    if len(value) <= 6:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 6) + value[-4:]
