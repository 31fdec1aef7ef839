"""WhatsApp jobs: one text, one template message, one text to many recipients. Each recipient of a
job gets its message once across retries, redeliveries and replays (messaging/whatsapp.py)."""

from __future__ import annotations

from audit.subjects import fetch_subject
from jobs.task_base import PlatformTask, platform_task
from marketplace.models import Vehicle
from messaging.bulk import BulkPaused, send_bulk
from messaging.whatsapp import send_whatsapp_once, validate_content_sid, validate_phone
from tasks.app import app

# The running totals of a bulk job, carried by the message that resumes it (messaging/bulk.py).
BULK_PROGRESS_HEADER = "bulk_progress"


@platform_task(name="tasks.notifications.send_whatsapp_message", soft_time_limit=45, time_limit=60)
def send_whatsapp_message(self, to: str, body: str, vehicle_id: int | None = None) -> dict:
    """Send one WhatsApp text to `to` (E.164), optionally about a vehicle."""
    number = validate_phone(to, field="to")
    if not isinstance(body, str) or not body.strip():
        raise ValueError("body: must not be empty")
    if vehicle_id is not None and fetch_subject(Vehicle, vehicle_id, argument="vehicle_id") is None:
        return {"status": "skipped", "reason": "vehicle deleted"}
    outcome = send_whatsapp_once(
        job_id=self.request.id, key="message", to=number, body=body, vehicle_id=vehicle_id
    )
    return _result(outcome, field="to")


@platform_task(name="tasks.notifications.send_whatsapp_template", soft_time_limit=45, time_limit=60)
def send_whatsapp_template(self, to: str, template: str, variables: dict) -> dict:
    """Send one WhatsApp template (Twilio Content API: ContentSid `template`, ContentVariables)."""
    number = validate_phone(to, field="to")
    content_sid = validate_content_sid(template, field="template")
    if not isinstance(variables, dict):
        raise ValueError('variables: must be an object of template placeholders, like {"1": "Corolla"}')
    outcome = send_whatsapp_once(
        job_id=self.request.id,
        key="template",
        to=number,
        template=content_sid,
        variables={str(k): str(v) for k, v in variables.items()},
    )
    return _result(outcome, field="to")


class BulkSendTask(PlatformTask):
    """PlatformTask whose rate-limit reschedule carries the bulk job's running totals along."""

    def _retry_later(self, exc: BaseException) -> BaseException:
        if isinstance(exc, BulkPaused):
            # The reschedule copies this request's headers into the next message.
            self.request.headers = {
                **(self.request.headers or {}),
                BULK_PROGRESS_HEADER: exc.progress.as_dict(),
            }
        return super()._retry_later(exc)


@app.task(
    base=BulkSendTask,
    bind=True,
    name="tasks.notifications.send_bulk_whatsapp_notifications",
    # Each execution sends what the shared Twilio limit allows, then the job is rescheduled to
    # carry on (RateLimited): the budget below bounds one execution, the deferrals the whole job.
    soft_time_limit=120,
    time_limit=150,
    max_rate_limit_deferrals=20_000,
)
def send_bulk_whatsapp_notifications(self, recipients: list[str], body: str) -> dict[str, int]:
    """Send one text to every recipient, each once; returns {recipients, sent, skipped, failed,
    resent_after_interruption}."""
    # BulkPaused (a RateLimited) reschedules this same job, with its totals (BulkSendTask).
    return send_bulk(
        job_id=self.request.id,
        recipients=recipients,
        body=body,
        progress=self.request.get(BULK_PROGRESS_HEADER),
        time_budget=90.0,
    )


def _result(outcome, *, field: str) -> dict:
    if outcome.status == "failed":
        # Twilio will never deliver to this number: a dead letter naming the argument.
        raise ValueError(f"{field}: Twilio refused this number (not a reachable WhatsApp number)")
    # No phone number in results: they are stored and shown in admin.
    return {"status": outcome.status, "sid": outcome.sid, "message_id": outcome.message_id}
