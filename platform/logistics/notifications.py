"""Telling buyers about their shipments: one message per shipment per tracking event, and one
delay alert per shipment per day.

send_shipment_updates claims each untold event (notified_at, a conditional update) and enqueues
its notification through the outbox in the same transaction; the notification's WhatsApp row is
keyed by shipment and event, so repeated notification jobs for one event send one message.
Delay alerts are daily notices (messaging/daily_notices.py), the shipment's own guard being
last_delay_alert_on.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from django.db import transaction

from jobs.outbox import enqueue_durably
from jobs.task_names import TaskName
from logistics.models import Shipment, ShipmentEvent
from logistics.selectors import shipments_to_alert, unnotified_events
from logistics.services import claim_delay_alert, mark_events_notified
from messaging.daily_notices import DailyNotice, send_daily_notices
from messaging.whatsapp import SendOutcome, send_whatsapp_once

logger = logging.getLogger(__name__)

NOTIFICATION_SCOPE = "shipment-notification"

_EVENT_TEXT = {
    ShipmentEvent.Kind.BOOKED: "is booked on {carrier} from {origin} to {destination}",
    ShipmentEvent.Kind.DEPARTED: "has left {origin} for {destination}",
    ShipmentEvent.Kind.TRANSSHIPPED: "has been transshipped{at} on its way to {destination}",
    ShipmentEvent.Kind.DELAYED: "is delayed{at}; we will tell you the new arrival date",
    ShipmentEvent.Kind.ARRIVED: "has arrived at {destination}",
    ShipmentEvent.Kind.CUSTOMS_CLEARED: "has cleared customs at {destination}",
    ShipmentEvent.Kind.DELIVERED: "has been delivered. Thank you for buying with us",
}


def queue_shipment_updates() -> dict[str, int]:
    """Enqueue one notification per tracking event nobody has told the buyer about."""
    queued = 0
    for event_id, shipment_id, kind in list(unnotified_events().values_list("pk", "shipment_id", "kind")):
        with transaction.atomic():
            # Only the caller whose update marked the event gets to notify about it.
            if not mark_events_notified(event_ids=[event_id]):
                continue
            enqueue_durably(TaskName.SEND_SHIPMENT_NOTIFICATION, shipment_id=shipment_id, event=kind)
        queued += 1
    return {"queued": queued}


def notify_shipment_event(*, shipment: Shipment, event: str) -> SendOutcome | None:
    """Tell the buyer about the latest `event` of the shipment, once per shipment and event."""
    occurrence = shipment.events.filter(kind=event).order_by("-occurred_at", "-pk").first()
    buyer = shipment.deal.buyer
    if not buyer.phone:
        logger.warning("shipment %s: buyer has no phone number, nothing sent", shipment.pk)
        return None
    location = f" at {occurrence.location}" if occurrence is not None and occurrence.location else ""
    vehicle = shipment.deal.vehicle
    text = _EVENT_TEXT[event].format(
        carrier=shipment.carrier or "the carrier",
        origin=shipment.origin_port,
        destination=shipment.destination_port,
        at=location,
    )
    body = f"Your {vehicle.year} {vehicle.make} {vehicle.model} {text}."
    if shipment.tracking_number:
        body += f" Tracking: {shipment.tracking_number}."
    occurrence_key = occurrence.pk if occurrence is not None else "status"
    key = f"shipment:{shipment.pk}:{event}:{occurrence_key}"
    return send_whatsapp_once(
        scope=NOTIFICATION_SCOPE, key=key, to=buyer.phone, body=body, vehicle_id=vehicle.pk
    )


def alert_delayed_shipments(*, now: datetime, today: date, job_id: str, actor: str) -> dict[str, int]:
    """Alert the buyer of each shipment past its ETA, at most once per shipment per day."""
    shipments = list(shipments_to_alert(now=now, today=today).select_related("deal__buyer"))
    counts = send_daily_notices(
        (DailyNotice(s.pk, s.deal.buyer.phone, delay_text(s, now=now)) for s in shipments),
        kind="delay-alert:shipment",
        task=TaskName.SEND_WHATSAPP_MESSAGE,
        claim=lambda shipment_id: claim_delay_alert(shipment_id=shipment_id, today=today, actor=actor),
        today=today,
        job_id=job_id,
    )
    return {
        "alerted": counts.queued,
        "already_alerted": counts.already_sent_today,
        "no_phone": counts.no_phone,
    }


def delay_text(shipment: Shipment, *, now: datetime) -> str:
    days = max(1, (now - shipment.eta).days) if shipment.eta else 0
    return (
        f"Your shipment from {shipment.origin_port} to {shipment.destination_port} is running "
        f"{days} day{'s' if days != 1 else ''} behind its expected arrival. We are following up "
        "with the carrier and will keep you posted."
    )
