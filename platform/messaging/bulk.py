"""One WhatsApp text to many recipients, each once, followed as a batch (messaging/batches.py).

Every recipient's row is recorded up front (one insert) with the batch row. A send to at most
CHUNK_SIZE recipients is then sent by the job itself; a larger one fans out: one chunk job per
CHUNK_SIZE rows (a pk range) on the notifications queue, whose I/O pool runs them side by side,
so the send is bounded by the shared Twilio rate limit, not by one job's sequential calls. The
bulk job itself then waits (a deferral every second, no worker held) until no row is pending,
marks the batch done and returns the totals. Exactly once per recipient stays the row's guard
(messaging/whatsapp.py): a chunk enqueued twice (the bulk job redelivered after a SIGKILL) finds
its rows sent, or held by the other execution.

A job does not wait inside a worker: when the shared limit is spent (RateLimited), its time budget
is (Deferred), or rows are held by another execution (Deferred), it raises BulkPaused and the task
base reschedules the same job (same id, retry budget untouched), which carries on with the rows
still queued. The result covers the whole run of the job, counted from its rows: `sent` (by this
run), `skipped` (the word results have always used: sent before this run began, by a redelivery or
a replay of a finished job), `failed` (Twilio refused the number). What travels with a rescheduled
job (BulkRun) is only when its run began and whether it fanned out, so a worker killed mid-run
loses no count: the rows hold them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from integrations.errors import RateLimited
from jobs.errors import DeferReason, Deferred
from messaging.batches import CHUNK_SIZE, enqueue_chunk, finish_batch_if_complete, is_cancelled, mark_paused
from messaging.models import BulkBatch, WhatsAppMessage
from messaging.whatsapp import DONE_STATUSES, deliver, pending_messages

logger = logging.getLogger(__name__)


def max_recipients() -> int:
    """Most recipients one bulk job may name (its argument type enforces it, in the worker and in
    the trigger API alike: tasks/notifications.py)."""
    return int(settings.API_MAX_BULK_RECIPIENTS)


@dataclass
class BulkRun:
    """One run of a bulk job (its first delivery, a redelivery, a replay), carried from each
    deferral of the job to the next (BulkPaused.run); the counts are read from the rows."""

    recipients: int
    started_at: str  # ISO time the run of the job began: rows sent since were sent by this run
    resent_after_interruption: int = 0
    fanned_out: bool = False  # chunk jobs send the rows; this job waits for them
    pending: int = -1  # rows pending at the last look, while waiting
    stalled_since: str = ""  # ISO time since which `pending` has not moved
    refanouts: int = 0  # times the pending rows' chunks were enqueued again

    def as_dict(self) -> dict:
        return asdict(self)


class BulkPaused(Exception):
    """The bulk job must come back later to finish, because of `cause` (a RateLimited or a
    Deferred); `run` travels with the rescheduled job (tasks/notifications.py, BulkSendTask)."""

    def __init__(self, cause: RateLimited | Deferred, *, run: BulkRun) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.run = run


def recipient_key(position: int) -> str:
    """The idempotency key of the recipient at `position` in the job's list, repeats dropped: the
    same for every run of the job (its arguments never change), and no number in clear (the rows'
    numbers are sealed; messaging/models.py). Rows recorded before were keyed "to:<number>" and
    rekeyed by migration 0004."""
    return f"recipient:{position}"


def send_bulk(
    *,
    job_id: str,
    recipients: list[str],
    body: str,
    run: dict | None = None,
    time_budget: float = 60.0,
    on_complete: str = "",
) -> dict[str, int]:
    """Send `body` to every recipient of job `job_id` once (a number listed twice gets one
    message); returns the job's totals. `recipients` are E.164 numbers and `body` is not blank:
    the task's argument types checked them.

    `run` is None when a run of the job begins (first delivery, a redelivery of it, a replay)
    and BulkPaused.run (as a dict) when the job is resumed after a pause. More than CHUNK_SIZE
    recipients fan out to chunk jobs (messaging/batches.py, enqueue_chunk). `on_complete` names
    a task enqueued (durably) with batch_id=job_id when the batch is done."""
    numbers = list(dict.fromkeys(recipients))
    if run is None:
        _record_recipients(job_id=job_id, numbers=numbers, body=body, on_complete=on_complete)
        this_run = BulkRun(recipients=len(numbers), started_at=timezone.now().isoformat())
        if len(numbers) > CHUNK_SIZE:
            this_run.fanned_out = True
            chunks = pending_chunks(job_id)
            BulkBatch.objects.filter(job_id=job_id).update(chunks=len(chunks))
            for first_id, last_id in chunks:
                enqueue_chunk(job_id, first_id, last_id)
    else:
        this_run = BulkRun(**run)
    try:
        if this_run.fanned_out:
            _wait_for_chunks(job_id, this_run)
        else:
            send_rows(
                job_id,
                pending_messages(scope=job_id),
                deadline=time.monotonic() + time_budget,
                run=this_run,
            )
    except (RateLimited, Deferred) as exc:
        raise BulkPaused(exc, run=this_run) from exc
    finish_batch_if_complete(job_id)
    result = job_totals(job_id=job_id, run=this_run)
    logger.info("bulk whatsapp job %s: %s", job_id, result)
    return result


# A fanned-out send whose pending rows have not moved for this long enqueues their chunks again:
# a chunk job lost by the broker (a Redis run without persistence that restarts; tests/faults) is
# published again by the outbox's relay only after OUTBOX_REPUBLISH_AFTER_SECONDS; a duplicate
# chunk job costs a look at its rows, never a second send. Each time it does, the wait before the
# next doubles (up to STALLED_AFTER_MAX), so a long Twilio outage (chunks waiting out their retry
# backoff) does not pile up duplicates.
STALLED_AFTER = timedelta(seconds=20)
STALLED_AFTER_MAX = timedelta(minutes=10)


def _wait_for_chunks(job_id: str, run: BulkRun) -> None:
    """Return once no row is pending (or the batch was cancelled); else Deferred to look again
    in a second, enqueueing the pending rows' chunks again when they stalled."""
    if is_cancelled(job_id):
        return
    pending = pending_messages(scope=job_id).count()
    if not pending:
        return
    now = timezone.now()
    if pending != run.pending or not run.stalled_since:
        run.pending, run.stalled_since = pending, now.isoformat()
    elif now - datetime.fromisoformat(run.stalled_since) > _stall_limit(run):
        chunks = pending_chunks(job_id)
        logger.warning(
            "bulk whatsapp job %s: %s row(s) pending without progress for %s s; enqueueing their %s "
            "chunk(s) again",
            job_id,
            pending,
            int(_stall_limit(run).total_seconds()),
            len(chunks),
        )
        for first_id, last_id in chunks:
            enqueue_chunk(job_id, first_id, last_id)
        run.stalled_since = now.isoformat()
        run.refanouts += 1
    raise Deferred("waiting for its chunk jobs", reason=DeferReason.WAITING_FOR_JOBS, retry_after=1.0)


def _stall_limit(run: BulkRun) -> timedelta:
    return min(STALLED_AFTER * 2 ** min(run.refanouts, 10), STALLED_AFTER_MAX)


def send_chunk(*, job_id: str, first_id: int, last_id: int, time_budget: float = 60.0) -> dict:
    """Send the pending rows of bulk job `job_id` with pk in [first_id, last_id]; RateLimited or
    Deferred when the job must come back later (the task base reschedules it)."""
    rows = pending_messages(scope=job_id).filter(pk__gte=first_id, pk__lte=last_id)
    resent = send_rows(job_id, rows, deadline=time.monotonic() + time_budget)
    return {
        "batch": job_id,
        "first_id": first_id,
        "last_id": last_id,
        "resent_after_interruption": resent,
        "completed_batch": finish_batch_if_complete(job_id),
    }


def send_rows(job_id: str, rows, *, deadline: float, run: BulkRun | None = None) -> int:
    """Deliver each row of `rows` (a queryset of the job's pending rows), checking before each
    send that the batch was not cancelled. Returns how many were resent after an interruption.
    Raises RateLimited when the shared limit is spent, Deferred when the time budget is
    (TIME_BUDGET_SPENT) or rows are in flight in another execution (HELD_ELSEWHERE): the job comes
    back to them."""
    held_elsewhere = resent = 0
    for message in rows.iterator(chunk_size=200):
        if is_cancelled(job_id):
            return resent  # what is left was cancelled with the batch
        if time.monotonic() > deadline:
            raise Deferred("time budget spent", reason=DeferReason.TIME_BUDGET_SPENT, retry_after=0.1)
        try:
            outcome = deliver(message)
        except Deferred as exc:
            if exc.reason != DeferReason.HELD_ELSEWHERE:
                raise
            held_elsewhere += 1  # another execution holds it (or cancel took it); counted when it ends
            continue
        except RateLimited as exc:
            # The shared Twilio limit is spent: resume when a slot frees up.
            mark_paused(job_id, retry_after=exc.retry_after or 1.0)
            raise
        if outcome.resent_after_ambiguity:
            resent += 1
            if run is not None:
                run.resent_after_interruption += 1
    if held_elsewhere and not is_cancelled(job_id):
        raise Deferred(
            f"{held_elsewhere} message(s) in flight elsewhere",
            reason=DeferReason.HELD_ELSEWHERE,
            retry_after=1.0,
        )
    return resent


def pending_chunks(job_id: str) -> list[tuple[int, int]]:
    """The pk ranges, CHUNK_SIZE pending rows each, of the job's rows still to send."""
    ids = list(pending_messages(scope=job_id).values_list("pk", flat=True))
    return [(ids[i], ids[min(i + CHUNK_SIZE, len(ids)) - 1]) for i in range(0, len(ids), CHUNK_SIZE)]


def job_totals(*, job_id: str, run: BulkRun) -> dict[str, int]:
    """The job's outcome, counted from its rows. Rows sent before this run began (by an earlier
    run: a redelivery, a replay) are "skipped" in the result, its word since the first release
    (docs/contract.md)."""
    rows = WhatsAppMessage.objects.filter(scope=job_id)
    started_at = datetime.fromisoformat(run.started_at)
    counts = rows.aggregate(
        sent=Count("pk", filter=Q(status__in=DONE_STATUSES, sent_at__gte=started_at)),
        sent_before_this_run=Count("pk", filter=Q(status__in=DONE_STATUSES) & ~Q(sent_at__gte=started_at)),
        failed=Count("pk", filter=Q(status=WhatsAppMessage.Status.FAILED)),
    )
    return {
        "recipients": run.recipients,
        "sent": counts["sent"],
        "skipped": counts["sent_before_this_run"],
        "failed": counts["failed"],
        "resent_after_interruption": run.resent_after_interruption,
    }


def _record_recipients(*, job_id: str, numbers: list[str], body: str, on_complete: str = "") -> None:
    """The batch and a row per recipient, before anything is sent (rows of an earlier run of the
    job are kept)."""
    with transaction.atomic():
        BulkBatch.objects.bulk_create(
            [BulkBatch(job_id=job_id, body=body, total=len(numbers), on_complete=on_complete)],
            ignore_conflicts=True,
        )
        WhatsAppMessage.objects.bulk_create(
            [
                WhatsAppMessage(to=n, body=body, scope=job_id, idempotency_key=recipient_key(position))
                for position, n in enumerate(numbers)
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )
