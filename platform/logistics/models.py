"""Logistics: the shipment that carries a deal's vehicle, and its tracking events."""

from django.db import models
from django.utils import timezone


class Shipment(models.Model):
    class Status(models.TextChoices):
        BOOKED = "booked", "Booked"
        IN_TRANSIT = "in_transit", "In transit"
        AT_PORT = "at_port", "At destination port"
        DELIVERED = "delivered", "Delivered"
        CANCELLED = "cancelled", "Cancelled"

    TRANSITIONS = {
        Status.BOOKED: frozenset({Status.IN_TRANSIT, Status.CANCELLED}),
        Status.IN_TRANSIT: frozenset({Status.AT_PORT}),
        Status.AT_PORT: frozenset({Status.DELIVERED}),
        Status.DELIVERED: frozenset(),
        Status.CANCELLED: frozenset(),
    }
    # Not yet arrived: these can be late (logistics.selectors.delayed_shipments).
    MOVING_STATUSES = (Status.BOOKED, Status.IN_TRANSIT)

    deal = models.ForeignKey("marketplace.Deal", on_delete=models.PROTECT, related_name="shipments")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.BOOKED)
    carrier = models.CharField(max_length=100, blank=True)
    tracking_number = models.CharField(max_length=100, blank=True)
    origin_port = models.CharField(max_length=100, help_text="e.g. Halifax, Montreal")
    destination_port = models.CharField(max_length=100, help_text="e.g. Douala")
    eta = models.DateTimeField("ETA", null=True, blank=True)
    departed_at = models.DateTimeField(null=True, blank=True)
    arrived_at = models.DateTimeField(null=True, blank=True)
    last_buyer_update_at = models.DateTimeField(null=True, blank=True)
    # At most one delay alert per shipment per day.
    last_delay_alert_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            # check_delayed_shipments: moving shipments whose ETA has passed.
            models.Index(fields=["status", "eta"], name="shipment_status_eta_idx"),
        ]

    def __str__(self) -> str:
        return f"Shipment #{self.pk} {self.origin_port} -> {self.destination_port} ({self.status})"


class ShipmentEvent(models.Model):
    class Kind(models.TextChoices):
        BOOKED = "booked", "Booked"
        DEPARTED = "departed", "Departed origin port"
        TRANSSHIPPED = "transshipped", "Transshipped"
        DELAYED = "delayed", "Delayed"
        ARRIVED = "arrived", "Arrived at destination port"
        CUSTOMS_CLEARED = "customs_cleared", "Cleared customs"
        DELIVERED = "delivered", "Delivered"

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    description = models.CharField(max_length=255, blank=True)
    location = models.CharField(max_length=100, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    # When the buyer was told; null = still to tell (send_shipment_updates).
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("shipment", "occurred_at")
        indexes = [
            # send_shipment_updates: events nobody has told the buyer about yet.
            models.Index(
                fields=["occurred_at"],
                name="shipmentevent_unnotified_idx",
                condition=models.Q(notified_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} @ {self.occurred_at:%Y-%m-%d %H:%M}"
