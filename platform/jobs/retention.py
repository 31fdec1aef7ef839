"""Retention of the job machinery's own records: effect-ledger rows, completed outbox messages,
and (through trigger_api) expired Idempotency-Keys. Deleted in bounded batches."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.models import DeadLetter, Effect, OutboxMessage

BATCH_SIZE = 5000


def _delete_in_batches(queryset) -> int:
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(queryset.values_list("pk", flat=True)[:BATCH_SIZE])
            if not ids:
                return deleted
            deleted += queryset.model.objects.filter(pk__in=ids).delete()[0]


def prune_job_records(*, now: datetime | None = None) -> dict[str, int]:
    """Delete ledger rows and completed outbox messages older than JOB_RECORD_RETENTION_DAYS.

    A ledger row is what stops a replayed job from redoing its effect, so the rows of a job
    that still has an open dead letter (it may be replayed any day) are kept however old."""
    from trigger_api.services import purge_expired

    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.JOB_RECORD_RETENTION_DAYS)
    replayable = DeadLetter.objects.filter(status=DeadLetter.Status.OPEN).values("task_id")
    effects = _delete_in_batches(Effect.objects.filter(created_at__lt=cutoff).exclude(job_id__in=replayable))
    outbox = _delete_in_batches(OutboxMessage.objects.filter(completed_at__lt=cutoff))
    return {"effects": effects, "outbox_messages": outbox, **purge_expired(now=now)}
