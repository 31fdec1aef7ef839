"""Vehicles a dealer lists for export, and the offers buyers make on them."""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from marketplace.models.people import Role, check_role
from marketplace.money import currency_field, money_field
from marketplace.validators import validate_vin


class Vehicle(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        AVAILABLE = "available", "Available"
        RESERVED = "reserved", "Reserved"
        SOLD = "sold", "Sold"
        EXPORTED = "exported", "Exported"

    # Allowed status changes (marketplace.services.transition_vehicle). Sold never goes back
    # to available: a sold vehicle cannot be offered again.
    TRANSITIONS = {
        Status.DRAFT: frozenset({Status.AVAILABLE}),
        Status.AVAILABLE: frozenset({Status.DRAFT, Status.RESERVED, Status.SOLD}),
        Status.RESERVED: frozenset({Status.AVAILABLE, Status.SOLD}),
        Status.SOLD: frozenset({Status.EXPORTED}),
        Status.EXPORTED: frozenset(),
    }

    vin = models.CharField("VIN", max_length=17, unique=True, validators=[validate_vin])
    make = models.CharField(max_length=60)
    model = models.CharField(max_length=60)
    year = models.PositiveSmallIntegerField(validators=[MinValueValidator(1950), MaxValueValidator(2100)])
    mileage_km = models.PositiveIntegerField(default=0)
    price_cad = money_field(verbose_name="price (CAD)")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    # db_index off: the named vehicle_dealer_idx below is the one index on this column.
    dealer = models.ForeignKey(
        "marketplace.Profile",
        on_delete=models.PROTECT,
        related_name="vehicles",
        db_index=False,
        limit_choices_to={"role": "dealer"},
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=["status"], name="vehicle_status_idx"),
            models.Index(fields=["make"], name="vehicle_make_idx"),
            models.Index(fields=["year"], name="vehicle_year_idx"),
            models.Index(fields=["-created_at"], name="vehicle_created_desc_idx"),
            models.Index(fields=["dealer"], name="vehicle_dealer_idx"),
            models.Index(fields=["price_cad"], name="vehicle_price_idx"),
            models.Index(fields=["status", "make"], name="vehicle_status_make_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(price_cad__gte=0), name="vehicle_price_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.year} {self.make} {self.model} ({self.vin})"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        check_role(errors, "dealer", self.dealer if self.dealer_id else None, Role.DEALER)
        if errors:
            raise ValidationError(errors)


class Offer(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"
        EXPIRED = "expired", "Expired"

    TRANSITIONS = {
        Status.PENDING: frozenset({Status.ACCEPTED, Status.REJECTED, Status.WITHDRAWN, Status.EXPIRED}),
        Status.ACCEPTED: frozenset(),
        Status.REJECTED: frozenset(),
        Status.WITHDRAWN: frozenset(),
        Status.EXPIRED: frozenset(),
    }

    vehicle = models.ForeignKey(Vehicle, on_delete=models.PROTECT, related_name="offers", db_index=False)
    buyer = models.ForeignKey(
        "marketplace.Profile",
        on_delete=models.PROTECT,
        related_name="offers",
        limit_choices_to={"role": "buyer"},
    )
    amount = money_field()
    currency = currency_field()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=["status"], name="offer_status_idx"),
            models.Index(fields=["-created_at"], name="offer_created_idx"),
            models.Index(fields=["vehicle"], name="offer_vehicle_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="offer_amount_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} for {self.vehicle_id}"

    def clean(self) -> None:
        # Only a new offer is checked against the vehicle: an old offer on a since-sold vehicle
        # stays valid history.
        errors: dict[str, str] = {}
        if self._state.adding and self.vehicle_id is not None:
            status = Vehicle.objects.filter(pk=self.vehicle_id).values_list("status", flat=True).first()
            if status != Vehicle.Status.AVAILABLE:
                errors["vehicle"] = f"This vehicle is {status}; only available vehicles take offers."
        check_role(errors, "buyer", self.buyer if self.buyer_id else None, Role.BUYER)
        if errors:
            raise ValidationError(errors)
