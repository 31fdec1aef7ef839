"""Maintenance jobs: the outbox relay, queue-depth samples, audit-log retention, the job records'
own retention, and a no-op that checks a worker end to end."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from django.conf import settings
from django.utils import timezone
from pydantic import Field

from audit.retention import delete_audit_logs_before
from jobs.arguments import json_int
from jobs.operations.queue_history import sample_queue_depths as sample_depths
from jobs.outbox import relay_outbox as relay
from jobs.retention import prune_job_records as prune
from jobs.task_base import platform_task
from jobs.task_names import TaskName

RetentionDays = Annotated[
    json_int(ge=1, le=36500) | None,
    Field(description="Retention in days; AUDIT_LOG_RETENTION_DAYS when omitted"),
]


@platform_task(name=TaskName.NOOP)
def noop(self) -> None:
    """Do nothing; proves that a job goes through broker, worker and result backend (and
    benchmarks the task base)."""
    return None


@platform_task(name=TaskName.RELAY_OUTBOX, soft_time_limit=50, time_limit=60)
def relay_outbox(self) -> dict[str, int]:
    """Publish outbox jobs that were never published, republish those the broker lost."""
    return relay()


@platform_task(name=TaskName.SAMPLE_QUEUE_DEPTHS, soft_time_limit=20, time_limit=30)
def sample_queue_depths(self) -> dict[str, int]:
    """Record every queue's depth now in a short history (jobs/operations/queue_history.py), so the ops
    dashboard can show each queue against an hour ago."""
    return sample_depths()


# Stop between batches this long into a run (under the soft limit of 540 s) and carry on in a new job.
AUDIT_CLEANUP_TIME_BUDGET_SECONDS = 480


@platform_task(name=TaskName.CLEANUP_OLD_AUDIT_LOGS, soft_time_limit=540, time_limit=600)
def cleanup_old_audit_logs(self, older_than_days: RetentionDays = None) -> dict:
    """Delete audit-log entries older than `older_than_days` (default AUDIT_LOG_RETENTION_DAYS),
    1,000 per transaction; a run that runs out of time enqueues its continuation."""
    if older_than_days is None:
        older_than_days = settings.AUDIT_LOG_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=older_than_days)
    # Leave a margin under the soft limit: stopping between batches is clean, being cut is not.
    result = delete_audit_logs_before(cutoff=cutoff, time_budget=AUDIT_CLEANUP_TIME_BUDGET_SECONDS)
    if not result["complete"]:
        # Out of time with rows left: a new job carries on now rather than next month.
        self.apply_async(kwargs={"older_than_days": older_than_days}, countdown=5)
    return {**result, "cutoff": cutoff.isoformat()}


@platform_task(name=TaskName.PRUNE_JOB_RECORDS, soft_time_limit=540, time_limit=600)
def prune_job_records(self) -> dict[str, int]:
    """Delete old effect-ledger rows (never those of a replayable dead letter), completed outbox
    messages and expired Idempotency-Keys."""
    return prune(now=timezone.now())
