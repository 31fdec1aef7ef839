"""Retention of the job machinery's own records: effect-ledger rows, completed outbox messages,
and the records apps above the machinery register (the trigger API's expired Idempotency-Keys).
Deleted in bounded batches (jobs/batch_delete.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from jobs.batch_delete import delete_in_batches
from jobs.models import DeadLetter, Effect, OutboxMessage

BATCH_SIZE = 5000

# Pruners of job records kept by apps above the machinery, registered from their AppConfig.ready():
# each takes `now` and returns {what: rows deleted}.
_registered_pruners: list[Callable[..., dict[str, int]]] = []


def register_pruner(prune: Callable[..., dict[str, int]]) -> None:
    if prune not in _registered_pruners:
        _registered_pruners.append(prune)


def prune_job_records(*, now: datetime | None = None) -> dict[str, int]:
    """Delete ledger rows and completed outbox messages older than JOB_RECORD_RETENTION_DAYS.

    A ledger row is what stops a replayed job from redoing its effect, so the rows of a job
    that still has an open dead letter (it may be replayed any day) are kept however old."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.JOB_RECORD_RETENTION_DAYS)
    replayable = DeadLetter.objects.filter(status=DeadLetter.Status.OPEN).values("task_id")
    effects = delete_in_batches(
        Effect.objects.filter(created_at__lt=cutoff).exclude(job_id__in=replayable), batch_size=BATCH_SIZE
    )
    outbox = delete_in_batches(OutboxMessage.objects.filter(completed_at__lt=cutoff), batch_size=BATCH_SIZE)
    counts = {"effects": effects.deleted, "outbox_messages": outbox.deleted}
    for prune in _registered_pruners:
        counts.update(prune(now=now))
    return counts
