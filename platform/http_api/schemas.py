"""Request and response bodies of the trigger API; their JSON Schema is the OpenAPI document's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import BeforeValidator, ConfigDict, Field

from http_api import conf
from jobs.arguments import integral_float_to_int
from jobs.task_names import TaskName

CeleryState = Literal[
    "PENDING", "RECEIVED", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED", "REJECTED", "IGNORED"
]


class JobRequest(Schema):
    """What to run. Arguments are checked against the task's schema (GET /api/v1/tasks)."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(
        min_length=1,
        max_length=255,
        examples=[TaskName.FETCH_VEHICLE_HISTORY.value],
        description="A task name from GET /api/v1/tasks",
    )
    kwargs: dict[str, Any] = Field(
        default_factory=dict,
        examples=[{"vin": "1HGCM82633A004352"}],
        description="The task's keyword arguments",
    )
    countdown: (
        Annotated[
            int,
            Field(strict=True, ge=0, le=conf.max_countdown_seconds()),
            BeforeValidator(integral_float_to_int),
        ]
        | None
    ) = Field(
        default=None,
        description="Run no earlier than this many seconds from now",
    )


class JobAccepted(Schema):
    id: str = Field(description="The job id (a UUID)", examples=["0b9a3c2e-4a0d-4c64-8d0e-1f1bb6f7d5a1"])
    task: str
    state: Literal["PENDING"]
    status_url: str = Field(examples=["/api/v1/jobs/0b9a3c2e-4a0d-4c64-8d0e-1f1bb6f7d5a1"])


class JobError(Schema):
    type: str = Field(description="Exception class, e.g. PermanentError")
    message: str


class BatchProgress(Schema):
    """How far a bulk job's batch got, counted from its recipient rows (messaging/batches.py)."""

    total: int = Field(ge=0, description="Recipients (a number given twice counts once)")
    sent: int = Field(ge=0, description="Accepted by Twilio")
    skipped: int = Field(ge=0, description="Not sent because the batch was cancelled")
    failed: int = Field(ge=0, description="Refused by Twilio for good (the number)")
    pending: int = Field(ge=0, description="Still to send")
    percent: int = Field(ge=0, le=100, description="Settled share (sent, skipped, failed), rounded down")
    rate: float = Field(ge=0, description="Sends per second over the last 10 s")
    state: Literal["running", "paused", "cancelled", "done"] = Field(
        description="paused: running, held back by the shared Twilio rate limit right now"
    )
    started_at: datetime
    estimated_finish: datetime | None = Field(description="At the current rate; null when unknown")
    finished_at: datetime | None


class JobStatus(Schema):
    id: str
    task: str | None = Field(
        description="Task name (null for a job not started through this API whose result lacks it)"
    )
    state: CeleryState
    result: Any = Field(None, description="The return value once SUCCESS, else null")
    error: JobError | None = Field(None, description="Why the last attempt failed (FAILURE, RETRY)")
    retries: int = Field(ge=0, description="Retries so far (attempts - 1)")
    dead_letter: bool = Field(description="True once the job gave up and was recorded as a dead letter")
    date_created: datetime | None
    date_done: datetime | None
    progress: BatchProgress | None = Field(
        None, description="A bulk job's batch progress; null for other jobs (and before it starts)"
    )


class TaskInfo(Schema):
    name: str
    description: str
    queue: str
    schema_: dict[str, Any] = Field(alias="schema", description="JSON Schema of the task's kwargs")


class ErrorDetail(Schema):
    code: str = Field(description="Machine-readable, snake_case", examples=["invalid_arguments"])
    message: str = Field(description="A human sentence")
    details: dict[str, Any] | None = Field(
        description='Extra facts, or null. Invalid input: {"fields": {"<dotted.path>": "<what is wrong>"}}, '
        'e.g. {"fields": {"kwargs.to": "must be an E.164 phone number, e.g. +14165550123"}}; '
        "list items by index (kwargs.recipients.3), headers as header.<Name>. "
        '413: {"max_bytes": n}. 429: {"retry_after": seconds}. 409: {"job_id": first job}.',
        examples=[{"fields": {"kwargs.to": "must be an E.164 phone number, e.g. +14165550123"}}],
    )


class ErrorResponse(Schema):
    error: ErrorDetail
