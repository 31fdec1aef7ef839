"""Services for dead letters: record a job that gave up, replay it, discard it."""

from __future__ import annotations

import logging
from datetime import datetime

from celery.exceptions import NotRegistered
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from jobs.arguments import check_keywords
from jobs.celery_app import app, registered_task
from jobs.models import DeadLetter

logger = logging.getLogger(__name__)


def record_dead_letter(
    *,
    task_id: str,
    task_name: str,
    args: list,
    kwargs: dict,
    queue: str,
    exc: BaseException,
    traceback: str,
    attempts: int,
    first_failed_at: str | datetime | None = None,
) -> DeadLetter:
    """Record (or, for a replay that failed again, update) the dead letter of a job."""
    now = timezone.now()
    first = parse_datetime(first_failed_at) if isinstance(first_failed_at, str) else first_failed_at
    exception_type = f"{type(exc).__module__}.{type(exc).__qualname__}"
    with transaction.atomic():
        letter, created = DeadLetter.objects.select_for_update().get_or_create(
            task_id=task_id,
            defaults=dict(
                task_name=task_name,
                queue=queue,
                args=args,
                kwargs=kwargs,
                exception_type=exception_type,
                exception_message=str(exc),
                traceback=traceback,
                attempts=attempts,
                first_failed_at=first or now,
                last_failed_at=now,
            ),
        )
        if not created:
            letter.exception_type = exception_type
            letter.exception_message = str(exc)
            letter.traceback = traceback
            letter.attempts = F("attempts") + attempts
            letter.last_failed_at = now
            letter.status = DeadLetter.Status.OPEN
            letter.resolved_at = None
            letter.resolved_by = ""
            letter.save()
            letter.refresh_from_db()
    logger.warning(
        "dead letter: %s[%s] gave up after %s attempt(s): %s",
        task_name,
        task_id,
        attempts,
        exception_type,
    )
    return letter


class ReplayFailed(RuntimeError):
    """A replayed job was not sent (the broker refused it, or its task no longer takes its
    arguments); that dead letter (and any after it) stays open."""


def replay_dead_letters(letters, *, by: str = "") -> int:
    """Run each open dead letter's job again under its original id; returns how many.

    The job keeps its id, so effects recorded in the ledger by earlier attempts are skipped. The
    letter is marked replayed only once the broker has the job: with the broker down it stays
    open (ReplayFailed), never closed with no job behind it."""

    replayed = 0
    for letter in letters:
        with transaction.atomic():
            # Locked while publishing: if the replay fails again at once, the worker's update
            # of this row waits for our commit and reopens it after we mark it replayed.
            locked = (
                DeadLetter.objects.select_for_update()
                .filter(pk=letter.pk, status=DeadLetter.Status.OPEN)
                .first()
            )
            if locked is None:
                continue  # someone else replayed or discarded it meanwhile
            try:
                # The names checked as the outbox checks them: a letter whose arguments its task
                # no longer takes (renamed since) would only fail again in a worker.
                check_keywords(registered_task(locked.task_name), locked.args, locked.kwargs)
            except (TypeError, NotRegistered) as exc:
                raise ReplayFailed(
                    f"cannot replay {locked} ({replayed} replayed before it): {type(exc).__name__}: {exc}"
                ) from exc
            try:
                app.send_task(
                    locked.task_name,
                    args=locked.args,
                    kwargs=locked.kwargs,
                    task_id=locked.task_id,
                    queue=locked.queue or None,
                )
            except Exception as exc:
                raise ReplayFailed(
                    f"could not replay {locked} ({replayed} replayed before it): {type(exc).__name__}: {exc}"
                ) from exc
            DeadLetter.objects.filter(pk=locked.pk).update(
                status=DeadLetter.Status.REPLAYED,
                replay_count=F("replay_count") + 1,
                resolved_at=timezone.now(),
                resolved_by=by,
            )
        replayed += 1
        logger.info("dead letter replayed: %s[%s] by %s", letter.task_name, letter.task_id, by or "?")
    return replayed


def discard_dead_letters(letters, *, by: str = "") -> int:
    """Close open dead letters without running them; returns how many."""
    ids = [letter.pk for letter in letters]
    return DeadLetter.objects.filter(pk__in=ids, status=DeadLetter.Status.OPEN).update(
        status=DeadLetter.Status.DISCARDED, resolved_at=timezone.now(), resolved_by=by
    )
