"""WhatsApp jobs: one text, one template message, one text to many recipients. Each recipient of a
job gets its message once across retries, redeliveries and replays (messaging/whatsapp.py).
Numbers and texts are personal: Sealed[...] (jobs/sealing.py) keeps them encrypted wherever the
job rests (broker, outbox, dead letters); the message rows seal them too (messaging/models.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from audit.subjects import fetch_subject
from jobs.arguments import ContentSid, E164Phone, RowId
from jobs.outcomes import NothingDone, nothing_done
from jobs.sealing import Sealed
from jobs.task_base import PlatformTask, platform_task
from jobs.task_names import TaskName
from marketplace.models import Vehicle
from messaging.batches import is_batch_callback
from messaging.bulk import BulkPaused, max_recipients, send_bulk, send_chunk
from messaging.whatsapp import SendOutcome, send_whatsapp_once

# The run of a bulk job (messaging/bulk.py, BulkRun), carried by the message that resumes it. (The
# header's name from when it carried totals: jobs already waiting keep theirs across a deploy.)
BULK_RUN_HEADER = "bulk_progress"


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _within_recipient_cap(value: object) -> object:
    # Counted on the list as given (a repeated number counts), before each number is checked.
    if isinstance(value, list) and len(value) > max_recipients():
        raise ValueError(f"must name at most {max_recipients()} recipients, got {len(value)}")
    return value


def _registered_callback(value: str) -> str:
    if not is_batch_callback(value):
        raise ValueError("must name a task registered as a batch callback (messaging.batches.batch_callback)")
    return value


BatchCallback = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    AfterValidator(_registered_callback),
    Field(description="A task run (with batch_id) once every recipient is settled"),
]
MessageBody = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1600),
    AfterValidator(_not_blank),
    Field(description="Message text, not blank (Twilio's limit: 1600 characters)"),
]
TemplateVariables = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=20)],
        Annotated[str, StringConstraints(max_length=1024)],
    ],
    Field(max_length=50, description='Template variables, e.g. {"1": "Corolla"}'),
]
Recipients = Annotated[
    list[E164Phone],
    BeforeValidator(_within_recipient_cap),
    Field(
        min_length=1,
        # The cap is a setting (API_MAX_BULK_RECIPIENTS): read when the schema is built.
        json_schema_extra=lambda schema: schema.update(maxItems=max_recipients()),
        description="E.164 numbers; a number given twice is sent to once",
    ),
]


@platform_task(name=TaskName.SEND_WHATSAPP_MESSAGE, soft_time_limit=45, time_limit=60)
def send_whatsapp_message(
    self, to: Sealed[E164Phone], body: Sealed[MessageBody], vehicle_id: RowId | None = None
) -> dict:
    """Send one WhatsApp text to `to`, optionally about a vehicle."""
    if vehicle_id is not None and fetch_subject(Vehicle, vehicle_id, argument="vehicle_id") is None:
        return nothing_done(NothingDone.DELETED, vehicle_id=vehicle_id)
    outcome = send_whatsapp_once(
        scope=self.request.id, key="message", to=to, body=body, vehicle_id=vehicle_id
    )
    return _result(outcome)


@platform_task(name=TaskName.SEND_WHATSAPP_TEMPLATE, soft_time_limit=45, time_limit=60)
def send_whatsapp_template(
    self, to: Sealed[E164Phone], template: ContentSid, variables: TemplateVariables
) -> dict:
    """Send one WhatsApp template (Twilio Content API: ContentSid `template`, ContentVariables)."""
    outcome = send_whatsapp_once(
        scope=self.request.id, key="template", to=to, template=template, variables=variables
    )
    return _result(outcome)


class BulkSendTask(PlatformTask):
    """PlatformTask whose deferrals (BulkPaused) carry the bulk job's run along."""

    deferrals = (*PlatformTask.deferrals, BulkPaused)

    def _retry_later(self, exc: BaseException) -> BaseException:
        if isinstance(exc, BulkPaused):
            # The reschedule copies this request's headers into the next message.
            self.request.headers = {**(self.request.headers or {}), BULK_RUN_HEADER: exc.run.as_dict()}
            exc = exc.cause  # why it pauses (a RateLimited, a Deferred): what the retry records
        return super()._retry_later(exc)


@platform_task(
    name=TaskName.SEND_BULK_WHATSAPP_NOTIFICATIONS,
    base=BulkSendTask,
    # Each execution sends what the shared Twilio limit allows, then the job is rescheduled to
    # carry on (BulkPaused): the budget below bounds one execution, the deferrals the whole job.
    soft_time_limit=120,
    time_limit=150,
    max_deferrals=20_000,
)
def send_bulk_whatsapp_notifications(
    self, recipients: Sealed[Recipients], body: Sealed[MessageBody], on_complete: BatchCallback | None = None
) -> dict[str, int]:
    """Send one text to every recipient, each once; returns {recipients, sent, skipped, failed,
    resent_after_interruption} (skipped: sent before this run of the job, by an earlier one: a
    redelivery, a replay). Followed as a batch (admin, and `progress` in the jobs API);
    `on_complete` names a registered batch callback run when the batch is done."""
    # BulkPaused reschedules this same job, with its run (BulkSendTask).
    return send_bulk(
        job_id=self.request.id,
        recipients=recipients,
        body=body,
        run=self.request.get(BULK_RUN_HEADER),
        time_budget=90.0,
        on_complete=on_complete or "",
    )


@platform_task(
    name=TaskName.SEND_BULK_WHATSAPP_CHUNK,
    soft_time_limit=120,
    time_limit=150,
    max_deferrals=20_000,
)
def send_bulk_whatsapp_chunk(
    self,
    batch_id: Annotated[str, StringConstraints(min_length=1, max_length=255)],
    first_id: RowId,
    last_id: RowId,
) -> dict:
    """Send the rows of bulk job `batch_id` with pk in [first_id, last_id] that are still to send,
    each once; stops at once when the batch is cancelled."""
    return send_chunk(job_id=batch_id, first_id=first_id, last_id=last_id, time_budget=90.0)


def _result(outcome: SendOutcome) -> dict:
    # Twilio will never deliver to this number: a dead letter naming the argument.
    outcome.raise_if_refused(argument="to")
    # No phone number in results: they are stored and shown in admin.
    return {"status": outcome.status, "sid": outcome.sid, "message_id": outcome.message_id}
