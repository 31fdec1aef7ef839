"""One WhatsApp text to many recipients, each once: every recipient's row is recorded up front
(one insert), then the rows are sent chunk by chunk as the shared Twilio rate limit allows.

When the limit is spent the job does not wait: RateLimited propagates, and the task base
reschedules the same job (same id, retry budget untouched), which carries on with the rows still
queued. The result covers the whole run of the job, counted from its rows: sent (by this run),
skipped (already sent before this run began: a redelivery or a replay of a finished job),
failed (Twilio refused the number). What travels with a rescheduled job (`progress`) is only
when its run began, so a worker killed mid-run loses no count: the rows hold them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from integrations.errors import RateLimited
from messaging.models import WhatsAppMessage
from messaging.whatsapp import DONE_STATUSES, deliver, pending_messages

logger = logging.getLogger(__name__)


def max_recipients() -> int:
    """Most recipients one bulk job may name (its argument type enforces it, in the worker and in
    the trigger API alike: tasks/notifications.py)."""
    return int(settings.API_MAX_BULK_RECIPIENTS)


@dataclass
class BulkProgress:
    recipients: int
    started_at: str  # ISO time the run of the job began: rows sent since were sent by this run
    resent_after_interruption: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


class BulkPaused(RateLimited):
    """The job must come back later to finish; `progress` holds the totals so far."""

    def __init__(self, message: str, *, progress: BulkProgress, retry_after: float, code: str) -> None:
        super().__init__(message, provider="twilio", code=code, retry_after=retry_after)
        self.progress = progress


def recipient_key(number: str) -> str:
    return f"to:{number}"


def send_bulk(
    *,
    job_id: str,
    recipients: list[str],
    body: str,
    progress: dict | None = None,
    time_budget: float = 60.0,
) -> dict[str, int]:
    """Send `body` to every recipient of job `job_id` once (a number listed twice gets one
    message); returns the job's totals. `recipients` are E.164 numbers and `body` is not blank:
    the task's argument types checked them.

    `progress` is None when a run of the job begins (first delivery, a redelivery of it, a replay)
    and BulkPaused.progress when the job is resumed after a pause."""
    numbers = list(dict.fromkeys(recipients))
    if progress is None:
        _record_recipients(job_id=job_id, numbers=numbers, body=body)
        totals = BulkProgress(recipients=len(numbers), started_at=timezone.now().isoformat())
    else:
        totals = BulkProgress(**progress)
    deadline = time.monotonic() + time_budget
    busy = 0
    for message in pending_messages(job_id=job_id).iterator(chunk_size=200):
        if time.monotonic() > deadline:
            raise BulkPaused("time budget spent", progress=totals, retry_after=0.1, code="time_budget")
        try:
            outcome = deliver(message)
        except RateLimited as exc:
            if exc.code == "in_flight":
                busy += 1  # another execution of this job holds it; counted when it ends
                continue
            # The shared Twilio limit is spent: resume this job when a slot frees up.
            raise BulkPaused(
                str(exc), progress=totals, retry_after=exc.retry_after or 1.0, code="rate_limited"
            ) from exc
        if outcome.resent_after_ambiguity:
            totals.resent_after_interruption += 1
    if busy:
        raise BulkPaused(
            f"{busy} message(s) in flight elsewhere", progress=totals, retry_after=1.0, code="in_flight"
        )
    result = job_totals(job_id=job_id, progress=totals)
    logger.info("bulk whatsapp job %s: %s", job_id, result)
    return result


def job_totals(*, job_id: str, progress: BulkProgress) -> dict[str, int]:
    """The job's outcome, counted from its rows."""
    rows = WhatsAppMessage.objects.filter(job_id=job_id)
    started_at = datetime.fromisoformat(progress.started_at)
    counts = rows.aggregate(
        sent=Count("pk", filter=Q(status__in=DONE_STATUSES, sent_at__gte=started_at)),
        skipped=Count("pk", filter=Q(status__in=DONE_STATUSES) & ~Q(sent_at__gte=started_at)),
        failed=Count("pk", filter=Q(status=WhatsAppMessage.Status.FAILED)),
    )
    return {
        "recipients": progress.recipients,
        **counts,
        "resent_after_interruption": progress.resent_after_interruption,
    }


def _record_recipients(*, job_id: str, numbers: list[str], body: str) -> None:
    """A row per recipient, before anything is sent (rows of an earlier run of the job are kept)."""
    with transaction.atomic():
        WhatsAppMessage.objects.bulk_create(
            [
                WhatsAppMessage(to=n, body=body, job_id=job_id, idempotency_key=recipient_key(n))
                for n in numbers
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )
