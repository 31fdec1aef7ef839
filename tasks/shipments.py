"""Shipment jobs: tell buyers about tracking events, and alert them when a shipment is late."""

from __future__ import annotations

from django.utils import timezone

from audit.subjects import fetch_subject
from jobs.task_base import platform_task
from logistics.models import Shipment
from logistics.notifications import (
    alert_delayed_shipments,
    notify_shipment_event,
    queue_shipment_updates,
    validate_event,
)


@platform_task(name="tasks.shipments.send_shipment_updates", soft_time_limit=120, time_limit=150)
def send_shipment_updates(self) -> dict[str, int]:
    """Enqueue one notification per tracking event the buyer has not been told about."""
    return queue_shipment_updates()


@platform_task(name="tasks.shipments.send_shipment_notification", soft_time_limit=45, time_limit=60)
def send_shipment_notification(self, shipment_id: int, event: str) -> dict:
    """Tell the buyer about one event of one shipment, once per shipment and event."""
    event = validate_event(event)
    shipment = fetch_subject(
        Shipment,
        shipment_id,
        argument="shipment_id",
        queryset=Shipment.objects.select_related("deal__buyer", "deal__vehicle"),
    )
    if shipment is None:
        return {"shipment_id": shipment_id, "status": "skipped", "reason": "deleted"}
    outcome = notify_shipment_event(shipment=shipment, event=event)
    if outcome is None:
        return {"shipment_id": shipment_id, "status": "skipped", "reason": "no phone"}
    if outcome.status == "failed":
        raise ValueError(
            "shipment_id: the buyer's number was refused by Twilio (not a reachable WhatsApp number)"
        )
    return {"shipment_id": shipment_id, "event": event, "status": outcome.status, "sid": outcome.sid}


@platform_task(name="tasks.shipments.check_delayed_shipments", soft_time_limit=120, time_limit=150)
def check_delayed_shipments(self) -> dict[str, int]:
    """Alert buyers of shipments past their ETA, once per shipment per day."""
    return alert_delayed_shipments(
        now=timezone.now(),
        today=timezone.localdate(),
        job_id=self.request.id,
        actor="task:tasks.shipments.check_delayed_shipments",
    )
