"""The tasks other services may trigger over HTTP: each is a task object with a description. Its
name and its arguments' model (the types of the task's signature: jobs/arguments.py) come from the
task itself, and its queue from Celery's router (jobs.celery_app.queue_of_task, on the routes of
platform/jobs/queues.py), so the API can never disagree with what the worker accepts. A task not
declared here cannot be triggered.

The model's JSON Schema is what GET /api/v1/tasks shows and what POST /api/v1/jobs validates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from jobs.arguments import TaskArguments
from jobs.celery_app import queue_of_task
from jobs.task_base import PlatformTask
from tasks import commissions, deals, fx, maintenance, notifications, payments, reports, shipments


@dataclass(frozen=True)
class TriggerableTask:
    task: PlatformTask
    description: str

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def arguments(self) -> type[TaskArguments]:
        return self.task.arguments

    @property
    def queue(self) -> str:
        return queue_of_task(self.name)

    def kwargs_schema(self) -> dict[str, Any]:
        return _json_schema(self.arguments)


@cache
def _json_schema(model: type[TaskArguments]) -> dict[str, Any]:
    # Built once per process: GET /api/v1/tasks would otherwise rebuild every schema per call.
    schema = model.model_json_schema()
    schema.pop("title", None)
    return schema


_DECLARED = [
    TriggerableTask(fx.update_exchange_rates, "Fetch CAD/USD/XAF rates, store them, refresh their cache."),
    TriggerableTask(
        payments.process_pending_payments, "Move pending invoices forward through Stripe, idempotently."
    ),
    TriggerableTask(
        payments.send_payment_reminders,
        "Remind buyers of overdue invoices, at most once per invoice per day.",
    ),
    TriggerableTask(deals.check_stalled_deals, "Flag leads and deals with no activity past their threshold."),
    TriggerableTask(deals.send_lead_follow_up, "Follow up one lead."),
    TriggerableTask(deals.send_deal_follow_up, "Follow up one deal."),
    TriggerableTask(shipments.send_shipment_updates, "Notify buyers of shipment progress."),
    TriggerableTask(shipments.send_shipment_notification, "Notify about one shipment event."),
    TriggerableTask(
        shipments.check_delayed_shipments, "Alert on shipments past their ETA, once per shipment per day."
    ),
    TriggerableTask(
        commissions.process_pending_commissions, "Compute and settle pending broker commissions, each once."
    ),
    TriggerableTask(maintenance.cleanup_old_audit_logs, "Delete audit-log rows past retention, in batches."),
    TriggerableTask(notifications.send_whatsapp_message, "One WhatsApp text through Twilio."),
    TriggerableTask(
        notifications.send_whatsapp_template, "One WhatsApp template message (Twilio Content API)."
    ),
    TriggerableTask(
        notifications.send_bulk_whatsapp_notifications,
        "One text to many recipients, each once, within Twilio's rate limit.",
    ),
    TriggerableTask(reports.fetch_vehicle_history, "Vehicle-history report by VIN, stored and cached 24 h."),
]

TRIGGERABLE: dict[str, TriggerableTask] = {task.name: task for task in _DECLARED}


def get_task(name: str) -> TriggerableTask | None:
    return TRIGGERABLE.get(name)
