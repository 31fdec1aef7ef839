"""Reads of the trigger API: a job's status from the result backend, the dead letters and the
record of accepted jobs."""

from __future__ import annotations

import json
import uuid
from typing import Any

from celery import states
from django_celery_results.models import TaskResult

from http_api.models import AcceptedJob
from identifiers import mask_phones_in
from jobs.models import DeadLetter
from jobs.task_names import TaskName
from messaging.batches import batch_progress
from messaging.models import BulkBatch


def job_status(*, job_id: str) -> dict[str, Any] | None:
    """The contract's view of one job, or None when the platform never heard of it.

    A job the API accepted but no worker has picked up yet has no result row: it is PENDING.
    `retries` comes from the result's meta (jobs/result_backend.py records it on every state
    change); a job without one falls back to its dead letter's attempts."""
    try:
        job_id = str(uuid.UUID(job_id))
    except (ValueError, TypeError, AttributeError):
        return None
    result = TaskResult.objects.filter(task_id=job_id).first()
    accepted = AcceptedJob.objects.filter(job_id=job_id).only("task_name", "created_at").first()
    letter = (
        DeadLetter.objects.filter(task_id=job_id)
        .only("attempts", "status", "task_name", "first_failed_at", "last_failed_at")
        .first()
    )
    if result is None and accepted is None and letter is None:
        return None
    status = _job_status(job_id, result, accepted, letter)
    status["progress"] = (
        _progress(job_id) if status["task"] == TaskName.SEND_BULK_WHATSAPP_NOTIFICATIONS else None
    )
    return status


def _progress(job_id: str) -> dict[str, Any] | None:
    """A bulk job's batch progress (its recipient rows counted now), else None (not started)."""
    batch = BulkBatch.objects.filter(job_id=job_id).first()
    return batch_progress(batch).as_dict() if batch is not None else None


def _job_status(job_id, result, accepted, letter) -> dict[str, Any]:
    task_name = (
        (result and result.task_name) or (accepted and accepted.task_name) or (letter and letter.task_name)
    )
    if result is None:
        # Accepted, not started; or a dead letter whose result row was already pruned.
        state = states.FAILURE if letter is not None else states.PENDING
        created = accepted.created_at if accepted else letter.first_failed_at
        done = letter.last_failed_at if letter is not None else None
        return _status(
            job_id, task_name, state, None, None, _retries(None, state, letter), letter, created, done
        )
    state = result.status
    value = _decode(result.result)
    error = None
    if state in states.EXCEPTION_STATES or state == states.RETRY:
        error, value = _error(value), None
    elif state != states.SUCCESS:
        value = None  # STARTED stores {"pid", "hostname"}: not a result
    return _status(
        job_id,
        task_name,
        state,
        value,
        error,
        _retries(result, state, letter),
        letter,
        accepted.created_at if accepted else result.date_created,
        result.date_done if state in states.READY_STATES else None,
    )


def _status(job_id, task_name, state, value, error, retries, letter, created, done) -> dict[str, Any]:
    return {
        "id": job_id,
        "task": task_name or None,
        "state": state,
        "result": value,
        "error": error,
        "retries": retries,
        # Open or discarded: it gave up. A replayed one is running again (or has finished).
        "dead_letter": letter is not None and letter.status != DeadLetter.Status.REPLAYED,
        "date_created": created,
        "date_done": done,
    }


def _decode(text: str | None) -> Any:
    if text in (None, ""):
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _error(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None if value is None else {"type": "Error", "message": mask_phones_in(str(value))}
    message = value.get("exc_message", "")
    if isinstance(message, list | tuple):
        message = " ".join(str(part) for part in message)
    # Provider messages may quote phone numbers: never hand them out (docs/architecture.md rule 8).
    return {"type": str(value.get("exc_type") or "Error"), "message": mask_phones_in(str(message))}


def _retries(result: TaskResult | None, state: str, letter: DeadLetter | None) -> int:
    meta = _decode(result.meta) if result is not None else None
    if isinstance(meta, dict) and isinstance(meta.get("retries"), int):
        # Stored by the attempt that reached this state; a RETRY has scheduled one more.
        return meta["retries"] + (1 if state == states.RETRY else 0)
    if letter is not None:
        return max(letter.attempts - 1, 0)
    return 0
