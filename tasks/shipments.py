"""Shipment jobs: tell buyers about tracking events, and alert them when a shipment is late."""

from __future__ import annotations

from typing import Annotated, Literal

from django.utils import timezone
from pydantic import Field

from audit.subjects import fetch_subject
from jobs.arguments import RowId
from jobs.outcomes import NothingDone, nothing_done
from jobs.task_base import platform_task
from jobs.task_names import TaskName
from logistics.models import Shipment, ShipmentEvent
from logistics.notifications import alert_delayed_shipments, notify_shipment_event, queue_shipment_updates

EventKind = Annotated[
    Literal[tuple(ShipmentEvent.Kind.values)],  # type: ignore[valid-type]
    Field(description="The shipment event to notify about (ShipmentEvent.Kind)"),
]


@platform_task(name=TaskName.SEND_SHIPMENT_UPDATES, soft_time_limit=120, time_limit=150)
def send_shipment_updates(self) -> dict[str, int]:
    """Enqueue one notification per tracking event the buyer has not been told about."""
    return queue_shipment_updates()


@platform_task(name=TaskName.SEND_SHIPMENT_NOTIFICATION, soft_time_limit=45, time_limit=60)
def send_shipment_notification(self, shipment_id: RowId, event: EventKind) -> dict:
    """Tell the buyer about one event of one shipment, once per shipment and event."""
    shipment = fetch_subject(
        Shipment,
        shipment_id,
        argument="shipment_id",
        queryset=Shipment.objects.select_related("deal__buyer", "deal__vehicle"),
    )
    if shipment is None:
        return nothing_done(NothingDone.DELETED, shipment_id=shipment_id)
    outcome = notify_shipment_event(shipment=shipment, event=event)
    if outcome is None:
        return nothing_done(NothingDone.NO_PHONE, shipment_id=shipment_id)
    outcome.raise_if_refused(argument="shipment_id")  # the buyer's number, through the shipment
    return {"shipment_id": shipment_id, "event": event, "status": outcome.status, "sid": outcome.sid}


@platform_task(name=TaskName.CHECK_DELAYED_SHIPMENTS, soft_time_limit=120, time_limit=150)
def check_delayed_shipments(self) -> dict[str, int]:
    """Alert buyers of shipments past their ETA, once per shipment per day."""
    return alert_delayed_shipments(
        now=timezone.now(),
        today=timezone.localdate(),
        job_id=self.request.id,
        actor=self.actor,
    )
