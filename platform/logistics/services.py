"""Writes to logistics: shipments, their status, tracking events and the notify/alert guards."""

from datetime import date, datetime

from django.db import transaction
from django.utils import timezone

from audit.services import claim_once_per_day, create_audited
from audit.transitions import apply_transition
from logistics.models import Shipment, ShipmentEvent
from marketplace.models import Deal


def create_shipment(
    *,
    deal: Deal,
    origin_port: str,
    destination_port: str,
    actor: str,
    eta: datetime | None = None,
    carrier: str = "",
    tracking_number: str = "",
) -> Shipment:
    shipment = Shipment(
        deal=deal,
        origin_port=origin_port,
        destination_port=destination_port,
        eta=eta,
        carrier=carrier,
        tracking_number=tracking_number,
    )
    return create_audited(obj=shipment, actor=actor)


def transition_shipment(*, shipment_id: int, to: str, actor: str) -> Shipment:
    """Move a shipment along Shipment.TRANSITIONS, stamping departure and arrival times."""

    def on_enter(obj: Shipment, old: str, new: str) -> dict:
        now = timezone.now()
        if new == Shipment.Status.IN_TRANSIT:
            obj.departed_at = now
            return {"departed_at": [None, now]}
        if new == Shipment.Status.AT_PORT:
            obj.arrived_at = now
            return {"arrived_at": [None, now]}
        return {}

    return apply_transition(
        model=Shipment,
        pk=shipment_id,
        to=to,
        actor=actor,
        table=Shipment.TRANSITIONS,
        on_enter=on_enter,
    )


def add_shipment_event(
    *,
    shipment: Shipment,
    kind: str,
    actor: str,
    occurred_at: datetime | None = None,
    description: str = "",
    location: str = "",
) -> ShipmentEvent:
    event = ShipmentEvent(
        shipment=shipment,
        kind=kind,
        occurred_at=occurred_at or timezone.now(),
        description=description,
        location=location,
    )
    return create_audited(obj=event, actor=actor)


def mark_events_notified(*, event_ids: list[int], at: datetime | None = None) -> int:
    """Record that the buyer was told about these events (only those not told yet) and when."""
    at = at or timezone.now()
    with transaction.atomic():
        events = ShipmentEvent.objects.filter(pk__in=event_ids, notified_at__isnull=True)
        shipment_ids = set(events.values_list("shipment_id", flat=True))
        count = events.update(notified_at=at)
        Shipment.objects.filter(pk__in=shipment_ids).update(last_buyer_update_at=at)
    return count


def claim_delay_alert(*, shipment_id: int, today: date, actor: str) -> bool:
    """True for exactly one caller per shipment per day: the one that may send today's alert."""
    return claim_once_per_day(
        Shipment, shipment_id, field="last_delay_alert_on", today=today, actor=actor, action="delay_alert"
    )
