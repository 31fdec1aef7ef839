"""Reads of logistics that the shipment tasks and admin share."""

from datetime import date, datetime

from django.db.models import Q, QuerySet

from logistics.models import Shipment, ShipmentEvent


def delayed_shipments(*, now: datetime) -> QuerySet[Shipment]:
    """Shipments not yet arrived whose ETA has passed (shipment_status_eta_idx)."""
    return Shipment.objects.filter(status__in=Shipment.MOVING_STATUSES, eta__lt=now).order_by("eta")


def shipments_to_alert(*, now: datetime, today: date) -> QuerySet[Shipment]:
    """Delayed shipments without a delay alert today: what check_delayed_shipments works through."""
    return delayed_shipments(now=now).filter(
        Q(last_delay_alert_on__isnull=True) | Q(last_delay_alert_on__lt=today)
    )


def unnotified_events() -> QuerySet[ShipmentEvent]:
    """Tracking events the buyer has not been told about, oldest first (shipmentevent_unnotified_idx)."""
    return (
        ShipmentEvent.objects.filter(notified_at__isnull=True)
        .select_related("shipment__deal__buyer")
        .order_by("occurred_at")
    )
