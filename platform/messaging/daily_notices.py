"""WhatsApp notices due at most once per subject per day: payment reminders, shipment delay alerts.

Two guards, in one transaction with the durable enqueue of the message:
- the subject's own date column, claimed by a conditional update (the caller's `claim`): two
  separate jobs on one day, e.g. the schedule and an operator's "run now", cannot both send;
- the effect ledger, keyed by subject and date: a redelivery of the same job skips what it did.
The message is an outbox job (jobs/outbox.py), so a crash after the commit loses nothing, and the
send-once row (messaging/whatsapp.py) keeps a republished job from sending twice. A subject whose
buyer has no phone number is counted and logged, and its day is left unclaimed: a number added
later in the day still gets that day's notice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

from django.db import transaction

from identifiers import mask_phone
from jobs.ledger import claim_effect
from jobs.outbox import enqueue_durably
from jobs.task_names import TaskName

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DailyNotice:
    subject_id: int
    phone: str  # E.164, or "" when the buyer has none
    text: str


@dataclass
class NoticeCounts:
    queued: int = 0
    already_sent_today: int = 0
    no_phone: int = 0


def send_daily_notices(
    notices: Iterable[DailyNotice],
    *,
    kind: str,
    task: TaskName,
    claim: Callable[[int], bool],
    today: date,
    job_id: str,
) -> NoticeCounts:
    """Enqueue `task(to=, body=)` for each notice not yet sent today; `kind` names the subject in
    ledger keys and logs ("reminder:invoice"), `claim(subject_id)` takes the subject's day."""
    counts = NoticeCounts()
    for notice in notices:
        if not notice.phone:
            counts.no_phone += 1
            logger.warning("%s %s: the buyer has no phone number, nothing sent", kind, notice.subject_id)
            continue
        with transaction.atomic():
            key = f"{kind}:{notice.subject_id}:{today.isoformat()}"
            if not claim_effect(key, job_id=job_id) or not claim(notice.subject_id):
                transaction.set_rollback(True)  # keep the ledger honest: nothing was done
                counts.already_sent_today += 1
                continue
            enqueue_durably(task, to=notice.phone, body=notice.text)
        counts.queued += 1
        logger.info("%s %s: notice queued to %s", kind, notice.subject_id, mask_phone(notice.phone))
    return counts
