"""The job machinery's own records are pruned, except what a replay still needs."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import DeadLetter, Effect, OutboxMessage
from jobs.retention import prune_job_records

pytestmark = pytest.mark.django_db


def _effect(job_id: str, *, days_old: int) -> Effect:
    effect = Effect.objects.create(job_id=job_id, key=f"k:{job_id}")
    Effect.objects.filter(pk=effect.pk).update(created_at=timezone.now() - timedelta(days=days_old))
    return effect


def test_old_effects_and_completed_outbox_messages_are_deleted_recent_ones_kept(settings):
    settings.JOB_RECORD_RETENTION_DAYS = 30
    old, recent = _effect("old-job", days_old=45), _effect("recent-job", days_old=3)
    long_done = OutboxMessage.objects.create(task_name="t", completed_at=timezone.now() - timedelta(days=40))
    still_open = OutboxMessage.objects.create(task_name="t")

    result = prune_job_records()

    assert result["effects"] == 1 and result["outbox_messages"] == 1
    assert not Effect.objects.filter(pk=old.pk).exists() and Effect.objects.filter(pk=recent.pk).exists()
    assert not OutboxMessage.objects.filter(pk=long_done.pk).exists()
    assert OutboxMessage.objects.filter(pk=still_open.pk).exists()


def test_ledger_rows_of_a_replayable_dead_letter_are_kept_however_old(settings):
    settings.JOB_RECORD_RETENTION_DAYS = 30
    kept = _effect("failed-job", days_old=400)
    now = timezone.now()
    DeadLetter.objects.create(
        task_id="failed-job", task_name="t", exception_type="E", first_failed_at=now, last_failed_at=now
    )

    prune_job_records()

    assert Effect.objects.filter(pk=kept.pk).exists()
