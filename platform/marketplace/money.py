"""Money conventions for every app: the currencies the marketplace trades in and the field
shape of an amount (exact Decimal, never float, never negative)."""

from decimal import ROUND_HALF_UP, Decimal

from django.core.validators import MinValueValidator
from django.db import models


class Currency(models.TextChoices):
    CAD = "CAD", "Canadian dollar"
    USD = "USD", "US dollar"
    XAF = "XAF", "Central African CFA franc"


# Dealers price in CAD; buyers may pay in any of the three.
BASE_CURRENCY = Currency.CAD

MONEY_MAX_DIGITS = 14
MONEY_DECIMAL_PLACES = 2
non_negative = MinValueValidator(Decimal("0"), message="Amounts cannot be negative.")


def money_field(**kwargs) -> models.DecimalField:
    """A DecimalField for an amount: 12 digits before the point (XAF amounts are large)."""
    kwargs.setdefault("validators", [non_negative])
    return models.DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, **kwargs)


def currency_field(**kwargs) -> models.CharField:
    kwargs.setdefault("default", BASE_CURRENCY)
    return models.CharField(max_length=3, choices=Currency.choices, **kwargs)


CENT = Decimal(10) ** -MONEY_DECIMAL_PLACES


def to_cents(amount: Decimal) -> Decimal:
    """Round money to the cent, half up (0.125 -> 0.13): the one rounding rule of the platform."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)
