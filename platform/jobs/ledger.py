"""The effect ledger: do an effect once per job and key, whatever runs the job twice.

A job may be delivered twice (a worker died after the effect but before the acknowledgement),
retried, or replayed from a dead letter under its original id. Claim the effect in the same
transaction as the rows it changes; if the claim was already made, the effect is done:

    from django.db import transaction
    from jobs.ledger import claim_effect

    @platform_task(name=TaskName.SEND_PAYMENT_REMINDERS)
    def send_payment_reminders(self):
        for invoice_id in overdue_invoice_ids():
            with transaction.atomic():
                if not claim_effect(f"reminder:invoice:{invoice_id}:{today}"):
                    continue  # this job already did it
                Invoice.objects.filter(pk=invoice_id).update(last_reminder_on=today)
                ...

The claim and the change commit together or not at all: a crash before the commit leaves
neither, so the redelivered job does the effect; a crash after leaves both, so it skips it.
Concurrent runs of the same job serialise on the unique index: the second waits for the
first's transaction and then sees the claim.
"""

from __future__ import annotations

from celery import current_task
from django.db import connections
from django.utils import timezone

from jobs.models import Effect


class NotInTransaction(RuntimeError):
    """claim_effect outside transaction.atomic() would record the effect apart from its rows."""


def current_job_id() -> str:
    """The id of the Celery job running now; effects are scoped to it."""
    request = current_task.request if current_task else None
    job_id = getattr(request, "id", None)
    if not job_id:
        raise RuntimeError("claim_effect() needs a running job or an explicit job_id")
    return job_id


def claim_effect(key: str, *, job_id: str | None = None, using: str = "default") -> bool:
    """Claim `key` for this job. True: do the effect now. False: it was done already.

    Must run inside transaction.atomic(), with the effect's own writes."""
    connection = connections[using]
    if not connection.in_atomic_block:
        raise NotInTransaction("claim_effect() must run inside transaction.atomic()")
    job_id = job_id or current_job_id()
    table = connection.ops.quote_name(Effect._meta.db_table)
    with connection.cursor() as cursor:
        # One statement, no savepoint: ON CONFLICT DO NOTHING works on PostgreSQL and SQLite.
        cursor.execute(
            f"INSERT INTO {table} (job_id, key, created_at) VALUES (%s, %s, %s) "  # noqa: S608 names quoted from model metadata; values bound as parameters
            "ON CONFLICT (job_id, key) DO NOTHING",
            [job_id, key, timezone.now()],
        )
        return cursor.rowcount == 1


__all__ = ("NotInTransaction", "claim_effect", "current_job_id")
