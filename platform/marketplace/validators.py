"""Django validators for the VIN and phone-number fields of the models. What a valid one is lives
in platform/identifiers/ (the one definition every layer shares); these only say it in Django's terms."""

from django.core.exceptions import ValidationError

from identifiers import is_e164, is_vin


def validate_vin(value: str) -> None:
    """Exactly 17 uppercase letters or digits, without I, O or Q."""
    if not is_vin(value):
        raise ValidationError(
            "Enter a valid VIN: 17 uppercase letters and digits, without I, O or Q.",
            code="invalid_vin",
            params={"value": value},
        )


def validate_e164_phone(value: str) -> None:
    """An E.164 number such as +14165550123 (no spaces, no 'whatsapp:' prefix)."""
    if not is_e164(value):
        raise ValidationError(
            "Enter a phone number in E.164 format, e.g. +14165550123.",
            code="invalid_phone",
        )
