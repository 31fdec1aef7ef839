"""A bulk WhatsApp send followed as a batch: progress, cancel, retry failed.

    progress = batch_progress(batch)          # total, sent, cancelled, failed, pending, rate, eta, state
    cancel_batch(batch, by="ops@example")     # nothing is sent once it returns; what was sent stays
    retry_failed(batch)                       # failed rows queued again, chunk jobs enqueued

The recipient rows (WhatsAppMessage, scope = the batch's job_id) are the truth and every count is
read from them: one aggregate over the index on (job_id, status) including sent_at, so a 5,000-row
batch reads in about a millisecond. No counter is kept beside the rows: a counter updated with the
row's status would need every writer of that status (the send guard, Twilio's status callbacks,
cancel, retry) to update it too, and a SIGKILL, a redelivery or a replay between the two writes is
exactly where counters drift. A count over the rows cannot drift.

Cancel stops sending at once: in one transaction the batch becomes `cancelled` and its queued rows
`cancelled` (a row's claim is a compare-and-set on its status, so no send can claim them after);
then it waits for the rows already claimed (`sending`, mid-call) to settle. Chunk jobs also read
the batch's state before each send (send_rows).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from jobs.outbox import enqueue_durably
from jobs.task_names import TaskName
from messaging.models import BulkBatch, WhatsAppMessage
from messaging.whatsapp import DONE_STATUSES, PENDING_STATUSES, sending_lease

# The rate is measured over this last stretch of sends.
RATE_WINDOW = timedelta(seconds=10)
# Rows per chunk job of a fanned-out send; a send to at most this many is one job.
CHUNK_SIZE = 50


# Tasks a bulk send may name as its `on_complete` (registered by the module defining them).
_CALLBACKS: set[str] = set()


def batch_callback(task):
    """Register a task (decorate it, below its @platform_task) as one a bulk send may run when its
    batch is done: it is enqueued through the outbox with `batch_id=<the bulk job's id>`. Only
    registered tasks may be named, so an API caller cannot make a batch enqueue any task."""
    _CALLBACKS.add(task.name)
    return task


def is_batch_callback(name: str) -> bool:
    return name in _CALLBACKS


# What a batch is doing, as shown: its stored state (BulkBatch.State), or this one, never stored,
# while the shared rate limit holds a running batch back.
PAUSED = "paused"


@dataclass(frozen=True)
class BatchProgress:
    """A batch's progress as shown (admin, the jobs API's `progress`), counted from its rows."""

    total: int
    sent: int
    cancelled: int  # not sent because the batch was cancelled first ("skipped" in as_dict)
    failed: int  # Twilio refused the number
    pending: int  # still to send (queued, or in flight)
    rate: float  # sends per second over the last RATE_WINDOW (0 when none)
    state: str  # a BulkBatch.State, or PAUSED
    started_at: datetime
    estimated_finish: datetime | None
    finished_at: datetime | None

    @property
    def percent(self) -> int:
        """How much is settled (sent, cancelled or failed), 0-100, rounded down."""
        if self.total == 0:
            return 100
        return min(100, (self.total - self.pending) * 100 // self.total)

    def as_dict(self) -> dict:
        data = asdict(self)
        # The cancelled rows are "skipped" wherever the batch's progress is read (the jobs API's
        # `progress`, docs/contract.md; the admin page's JSON): clients read that key.
        data["skipped"] = data.pop("cancelled")
        for key in ("started_at", "estimated_finish", "finished_at"):
            data[key] = data[key].isoformat() if data[key] else None
        data["percent"] = self.percent
        return data


def batch_progress(batch: BulkBatch) -> BatchProgress:
    """The batch's progress, counted from its rows now."""
    now = timezone.now()
    since = now - RATE_WINDOW
    counts = WhatsAppMessage.objects.filter(scope=batch.job_id).aggregate(
        rows=Count("pk"),
        sent=Count("pk", filter=Q(status__in=DONE_STATUSES)),
        cancelled=Count("pk", filter=Q(status=WhatsAppMessage.Status.CANCELLED)),
        failed=Count("pk", filter=Q(status=WhatsAppMessage.Status.FAILED)),
        pending=Count("pk", filter=Q(status__in=PENDING_STATUSES)),
        recent=Count("pk", filter=Q(status__in=DONE_STATUSES, sent_at__gte=since)),
        first_sent=Min("sent_at"),
        last_sent=Max("sent_at"),
    )
    rate = _rate(counts, since=since, now=now)
    state = batch.state
    if state == BulkBatch.State.RUNNING and batch.paused_until and batch.paused_until > now:
        state = PAUSED
    estimated = None
    if state in (BulkBatch.State.RUNNING, PAUSED) and counts["pending"] and rate > 0:
        estimated = now + timedelta(seconds=counts["pending"] / rate)
    return BatchProgress(
        total=max(batch.total, counts["rows"]),
        sent=counts["sent"],
        cancelled=counts["cancelled"],
        failed=counts["failed"],
        pending=counts["pending"],
        rate=round(rate, 1),
        state=state,
        started_at=batch.started_at,
        estimated_finish=estimated,
        finished_at=batch.finished_at,
    )


def _rate(counts: dict, *, since: datetime, now: datetime) -> float:
    if not counts["recent"]:
        return 0.0
    # Over the last window, or since the first send when the batch is younger than that.
    began = max(since, counts["first_sent"])
    seconds = max((now - began).total_seconds(), 1.0)
    return counts["recent"] / seconds


def is_cancelled(job_id: str) -> bool:
    """True once the batch of bulk job `job_id` was cancelled (checked before each send)."""
    return BulkBatch.objects.filter(job_id=job_id, state=BulkBatch.State.CANCELLED).exists()


def mark_paused(job_id: str, *, retry_after: float) -> None:
    """The shared rate limit held a send of this batch back for `retry_after` seconds. Written
    only when it moves the pause forward noticeably, so a busy batch does not queue on its row."""
    until = timezone.now() + timedelta(seconds=retry_after)
    BulkBatch.objects.filter(job_id=job_id, state=BulkBatch.State.RUNNING).filter(
        Q(paused_until__isnull=True) | Q(paused_until__lt=until - timedelta(seconds=0.5))
    ).update(paused_until=until)


def finish_batch_if_complete(job_id: str) -> bool:
    """Mark a running batch done once no row is left to send, and enqueue its callback (in the same
    transaction, through the outbox: it runs once the batch is done, even after a crash). True only
    for the one call that made it done."""
    with transaction.atomic():
        if WhatsAppMessage.objects.filter(scope=job_id, status__in=PENDING_STATUSES).exists():
            return False
        finished = BulkBatch.objects.filter(job_id=job_id, state=BulkBatch.State.RUNNING).update(
            state=BulkBatch.State.DONE, finished_at=timezone.now(), paused_until=None
        )
        if not finished:
            return False
        callback = BulkBatch.objects.filter(job_id=job_id).values_list("on_complete", flat=True).first()
        if callback:
            enqueue_durably(callback, batch_id=job_id)
    return True


def enqueue_chunk(job_id: str, first_id: int, last_id: int) -> str:
    """Enqueue the chunk job that sends the pending rows of bulk job `job_id` with pk in
    [first_id, last_id]: the fan-out, its re-fan-out and "retry failed" all enqueue through here,
    durably (jobs/outbox.py: the keywords checked, the job published once the caller's
    transaction commits, and again by the relay if the broker lost it)."""
    return enqueue_durably(
        TaskName.SEND_BULK_WHATSAPP_CHUNK, batch_id=job_id, first_id=first_id, last_id=last_id
    )


def cancel_batch(batch: BulkBatch, *, by: str, settle_timeout: float | None = None) -> int:
    """Stop the batch: no message of it is sent once this returns; those sent stay sent. Returns
    how many rows were cancelled. A row whose worker died mid-call (left `sending`) cannot be
    waited for: after `settle_timeout` (default: the send-once lease) it is left as it is."""
    with transaction.atomic():
        updated = BulkBatch.objects.filter(pk=batch.pk, state=BulkBatch.State.RUNNING).update(
            state=BulkBatch.State.CANCELLED, finished_at=timezone.now(), cancelled_by=by[:150]
        )
        cancelled = _cancel_queued(batch.job_id)
    if not updated:
        return cancelled
    deadline = time.monotonic() + (
        settle_timeout if settle_timeout is not None else sending_lease().total_seconds()
    )
    # Sends claimed before the cancel committed are mid-call: wait for them to land.
    while (
        WhatsAppMessage.objects.filter(scope=batch.job_id, status=WhatsAppMessage.Status.SENDING).exists()
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    # A send that failed transiently meanwhile went back to queued: cancel it too.
    return cancelled + _cancel_queued(batch.job_id)


def _cancel_queued(job_id: str) -> int:
    return WhatsAppMessage.objects.filter(scope=job_id, status=WhatsAppMessage.Status.QUEUED).update(
        status=WhatsAppMessage.Status.CANCELLED, updated_at=timezone.now()
    )


def retry_failed(batch: BulkBatch) -> int:
    """Queue the batch's failed rows again (only those), run the batch again, and enqueue a chunk
    job per CHUNK_SIZE of them, durably in the same transaction (jobs/outbox.py). Returns how many
    rows were queued again."""
    with transaction.atomic():
        ids = list(
            WhatsAppMessage.objects.filter(scope=batch.job_id, status=WhatsAppMessage.Status.FAILED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not ids:
            return 0
        WhatsAppMessage.objects.filter(pk__in=ids, status=WhatsAppMessage.Status.FAILED).update(
            status=WhatsAppMessage.Status.QUEUED, error_code="", error_message="", updated_at=timezone.now()
        )
        BulkBatch.objects.filter(pk=batch.pk).update(
            state=BulkBatch.State.RUNNING, finished_at=None, paused_until=None, cancelled_by=""
        )
        for chunk in _chunks(ids, CHUNK_SIZE):
            enqueue_chunk(batch.job_id, chunk[0], chunk[-1])
    return len(ids)


def _chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def failed_recipients(batch: BulkBatch, *, limit: int = 200) -> list[WhatsAppMessage]:
    """The batch's failed rows with Twilio's reasons (callers mask the numbers)."""
    return list(
        WhatsAppMessage.objects.filter(scope=batch.job_id, status=WhatsAppMessage.Status.FAILED)
        .only("pk", "to", "error_code", "error_message", "updated_at")
        .order_by("pk")[:limit]
    )
