"""Durable enqueue: a job that survives a crash between commit and publish, and a lost broker.

    from jobs.outbox import enqueue_durably

    with transaction.atomic():
        invoice = mark_invoice_processing(invoice_id=...)
        enqueue_durably(process_invoice_payment, invoice_id=invoice.pk)

The job is written to the outbox in the caller's transaction (it exists exactly when the data
it is about exists), and published as soon as that transaction commits. The relay
(`relay_outbox`, run by tasks.maintenance.relay_outbox on a schedule) publishes rows that never
were (the process died between commit and publish, or the broker was down), and republishes rows
whose job did not complete within OUTBOX_REPUBLISH_AFTER_SECONDS (the broker lost the message). The
job id never changes, so a republished job is a redelivery that the task's ledger makes
harmless. Workers record completion (platform/jobs/task_base.py) for messages marked `durable`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Task
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_celery_results.models import TaskResult

from jobs.arguments import check_keywords
from jobs.brokers import QueueDepth, current_broker
from jobs.celery_app import app, queue_of_task, registered_task
from jobs.models import OutboxMessage
from jobs.queues import QUEUE_NAMES
from jobs.sealing import seal_arguments

# The message header that marks a job published from the outbox; its worker records completion
# (jobs/task_base.py) so the relay stops watching it.
DURABLE_HEADER = "durable"

logger = logging.getLogger(__name__)


def enqueue_durably(
    task: Task | str, *, countdown: float | None = None, queue: str | None = None, **kwargs
) -> str:
    """Enqueue `task(**kwargs)` durably, in the current transaction. Returns the job id.

    `task` is the task or its registered name (TaskName: for code below tasks/, which cannot
    import it). Either way the keywords are checked here, as `.delay()` checks them: a misspelt
    one raises TypeError in the caller, naming it, and nothing is written (jobs/arguments.py)."""
    if isinstance(task, str):
        task = registered_task(task)
    check_keywords(task, kwargs=kwargs)
    # The row holds the message as it will travel: its sealed arguments sealed (jobs/sealing.py).
    _, kwargs = seal_arguments(getattr(task, "arguments", None), (), kwargs)
    message = OutboxMessage.objects.create(
        task_name=task.name,
        kwargs=kwargs,
        queue=queue or "",
        eta=timezone.now() + timedelta(seconds=countdown) if countdown else None,
    )
    transaction.on_commit(lambda: publish(message))
    return str(message.job_id)


def publish(message: OutboxMessage) -> bool:
    """Publish one outbox message to the broker and record it; False if the broker refused."""

    options = {"task_id": str(message.job_id), "headers": {DURABLE_HEADER: True}}
    if message.queue:
        options["queue"] = message.queue
    if message.eta and message.eta > timezone.now():
        options["eta"] = message.eta
    try:
        app.send_task(message.task_name, kwargs=message.kwargs, **options)
    except Exception as exc:  # broker down: the relay will publish it later
        OutboxMessage.objects.filter(pk=message.pk).update(
            publish_attempts=F("publish_attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:1000]
        )
        logger.warning(
            "outbox: could not publish %s[%s], the relay will: %s",
            message.task_name,
            message.job_id,
            type(exc).__name__,
        )
        return False
    OutboxMessage.objects.filter(pk=message.pk).update(
        published_at=timezone.now(), publish_attempts=F("publish_attempts") + 1, last_error=""
    )
    return True


def mark_completed(job_id: str, *, outcome: str) -> None:
    """Called by the worker when a durable job succeeded or gave up (dead letter)."""
    OutboxMessage.objects.filter(job_id=job_id, completed_at__isnull=True).update(
        completed_at=timezone.now(), outcome=outcome
    )


def relay_outbox(*, batch_size: int = 500) -> dict[str, int]:
    """Publish what was never published; republish what never completed. One query when idle."""

    now = timezone.now()
    grace = timedelta(seconds=settings.OUTBOX_PUBLISH_GRACE_SECONDS)
    republish_after = timedelta(seconds=settings.OUTBOX_REPUBLISH_AFTER_SECONDS)
    counts = {"published": 0, "republished": 0, "completed": 0, "failed": 0}
    # A job with a countdown waits, reserved by a worker, until its ETA: count from then.
    due_rows = OutboxMessage.objects.filter(completed_at__isnull=True).filter(
        Q(published_at__isnull=True, created_at__lt=now - grace)
        | Q(published_at__lt=now - republish_after, eta__isnull=True)
        | Q(published_at__isnull=False, eta__lt=now - republish_after)
    )
    if not due_rows.exists():
        return counts  # idle: this one indexed query is the whole cost of a sweep
    with transaction.atomic():
        # skip_locked: two relays running at once share the work instead of doubling it.
        due = list(due_rows.select_for_update(skip_locked=True).order_by("created_at")[:batch_size])
        results = {
            task_id: (status, date_done)
            for task_id, status, date_done in TaskResult.objects.filter(
                task_id__in=[str(m.job_id) for m in due]
            ).values_list("task_id", "status", "date_done")
        }
        waiting = _waiting_by_queue()
        for message in due:
            state, changed_at = results.get(str(message.job_id), (None, None))
            if state in ("SUCCESS", "FAILURE"):
                # It ran; only the completion record was lost.
                mark_completed(str(message.job_id), outcome=state)
                counts["completed"] += 1
                continue
            if state in ("STARTED", "RETRY") and changed_at and changed_at > now - republish_after:
                continue  # alive: running or waiting for its next attempt
            if message.published_at and state is None and _may_still_be_queued(message, waiting):
                continue  # a backlog older than this job is still waiting: so may this job
            kind = "republished" if message.published_at else "published"
            if publish(message):
                counts[kind] += 1
                logger.info("outbox relay: %s %s[%s]", kind, message.task_name, message.job_id)
            else:
                counts["failed"] += 1
    return counts


def _queue_of(message: OutboxMessage) -> str:
    return message.queue or queue_of_task(message.task_name)


def _waiting_by_queue() -> dict[str, QueueDepth] | None:
    """What waits in each queue now; None if the broker is unreadable."""

    try:
        return {queue.name: queue for queue in current_broker().queue_depths(QUEUE_NAMES)}
    except Exception as exc:  # a broker down or hung: nothing can be published this sweep either
        logger.warning("outbox relay: cannot read the broker's queues: %s", exc)
        return None


def _may_still_be_queued(message: OutboxMessage, waiting: dict[str, QueueDepth] | None) -> bool:
    # Queues are FIFO: if the oldest message waiting in this job's queue was published before
    # it, the job may be waiting behind a backlog, not lost. An empty queue no longer holds it.
    # Where the broker cannot tell the oldest message's age (RabbitMQ), any backlog may hold it:
    # the relay waits for the queue to drain rather than run the job twice.
    if waiting is None:
        return True  # can't tell, and can't publish either: try again next sweep
    queue = waiting.get(_queue_of(message))
    if queue is None or queue.depth == 0:
        return False
    if queue.oldest_age_seconds is None:
        return True
    oldest_published_at = timezone.now().timestamp() - queue.oldest_age_seconds
    return oldest_published_at <= message.published_at.timestamp()


def outbox_backlog() -> int:
    """Open outbox messages (not completed): for metrics and admin."""
    return OutboxMessage.objects.filter(completed_at__isnull=True).count()
