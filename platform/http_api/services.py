"""Writes of the trigger API: accept a job (idempotently), purge expired bookkeeping (in batches)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connections, router, transaction
from django.utils import timezone

from http_api import conf
from http_api.models import AcceptedJob, ApiKey, IdempotencyRecord
from http_api.publish import publish_job
from jobs import async_commit
from jobs.batch_delete import delete_in_batches


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with another body."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


@dataclass(frozen=True)
class Acceptance:
    job: AcceptedJob
    replayed: bool  # True: an earlier request with the same Idempotency-Key created it


def body_hash(body: Any) -> str:
    """Hash of a JSON body that ignores key order and whitespace: 'the same body'."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def accept_job(
    *,
    api_key: ApiKey,
    task_name: str,
    kwargs: dict[str, Any],
    countdown: int | None,
    idempotency_key: str | None,
    request_hash: str,
) -> Acceptance:
    """Record and publish one job, or return the job an Idempotency-Key already made.

    With an Idempotency-Key, the rows are written and the job is published in one transaction:
    if the broker refuses, publish_job raises BrokerUnavailable and nothing is recorded (the
    caller answers 503; a retry with the same Idempotency-Key starts afresh). Two requests racing
    with one key: the second one's INSERT waits on the unique index until the first commits, then
    fails, and it answers with the first one's job (it never publishes).

    Without one there is nothing to race for: the job is published first, then its acceptance
    row is written in one round trip (not BEGIN/INSERT/COMMIT) whose commit does not wait for the
    disk (jobs/async_commit.py), before the 202, so the status URL answers PENDING as soon as the
    client holds it. A refused publish records nothing, as above.
    """
    if not idempotency_key:
        return Acceptance(job=_publish_then_record(api_key, task_name, kwargs, countdown), replayed=False)
    earlier = _earlier_job(api_key=api_key, key=idempotency_key, request_hash=request_hash)
    if earlier is not None:
        return Acceptance(job=earlier, replayed=True)
    try:
        with transaction.atomic():
            job = AcceptedJob.objects.create(job_id=uuid.uuid4(), task_name=task_name, api_key=api_key)
            IdempotencyRecord.objects.create(
                api_key=api_key, key=idempotency_key, body_hash=request_hash, job=job
            )
            publish_job(task_name=task_name, kwargs=kwargs, job_id=str(job.job_id), countdown=countdown)
    except IntegrityError:
        earlier = _earlier_job(api_key=api_key, key=idempotency_key, request_hash=request_hash)
        if earlier is None:  # the winner rolled back in between: rare, and safe to refuse
            raise
        return Acceptance(job=earlier, replayed=True)
    return Acceptance(job=job, replayed=False)


def _publish_then_record(
    api_key: ApiKey, task_name: str, kwargs: dict[str, Any], countdown: int | None
) -> AcceptedJob:
    job = AcceptedJob(job_id=uuid.uuid4(), task_name=task_name, api_key=api_key)
    publish_job(task_name=task_name, kwargs=kwargs, job_id=str(job.job_id), countdown=countdown)
    _record(job)
    return job


def _record(job: AcceptedJob) -> None:
    """The acceptance row of a published job, in one round trip.

    Its commit does not wait for the disk: the broker holds the job already (jobs/async_commit.py).
    Nor is the connection health-checked first (CONN_HEALTH_CHECKS: a SELECT 1 per request):
    the INSERT is the check, and on a connection the server dropped it is written once more on
    a fresh one (the job was published: failing the request now would invite a duplicate)."""
    connection = connections[router.db_for_write(AcceptedJob)]
    connection.health_check_done = True
    try:
        async_commit.insert(job, connection)
    except (OperationalError, InterfaceError):
        connection.close()
        try:
            async_commit.insert(job, connection)
        except IntegrityError:
            pass  # the first one was written after all, only its answer was lost


def _earlier_job(*, api_key: ApiKey, key: str, request_hash: str) -> AcceptedJob | None:
    record = IdempotencyRecord.objects.select_related("job").filter(api_key=api_key, key=key).first()
    if record is None:
        return None
    if record.created_at < timezone.now() - timedelta(seconds=conf.idempotency_ttl_seconds()):
        # Expired: the key is free for a new job.
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return None
    if record.body_hash != request_hash:
        raise IdempotencyConflict(str(record.job_id))
    return record.job


def purge_expired(*, now=None) -> dict[str, int]:
    """Delete Idempotency-Keys past their 24 h and accepted-job records past the results'
    retention (CELERY_RESULT_EXPIRES: after it, GET answers 404 for the job either way)."""
    now = now or timezone.now()
    keys = delete_in_batches(
        IdempotencyRecord.objects.filter(
            created_at__lt=now - timedelta(seconds=conf.idempotency_ttl_seconds())
        )
    )
    retention = int(settings.CELERY_RESULT_EXPIRES)
    # An accepted job's delete cascades to its Idempotency-Key, if one is left: counted with the jobs.
    jobs = delete_in_batches(AcceptedJob.objects.filter(created_at__lt=now - timedelta(seconds=retention)))
    return {"idempotency_keys": keys.deleted, "accepted_jobs": jobs.deleted}
