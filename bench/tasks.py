"""Bench-only tasks, loaded by benchmark workers through CELERY_IMPORTS (bench/settings.py)."""

import time

from celery import shared_task
from django.db import transaction
from django_redis import get_redis_connection

from integrations.twilio_whatsapp import get_whatsapp_client
from jobs.ledger import claim_effect
from jobs.task_base import platform_task

LATENCY_KEY = "bench:latency:started"


@shared_task(name="bench.tasks.bare_noop")
def bare_noop() -> None:
    """The baseline of the task-overhead benchmark: Celery's plain task class, no options."""
    return None


@shared_task(name="bench.tasks.ledger_row", bind=True)
def ledger_row(self) -> None:
    """One effect-ledger row per job: the smallest real unit of platform work. A plain task, so
    the worker's settings alone decide acks_late, prefetch and connection reuse."""
    with transaction.atomic():
        claim_effect("bench:ledger-row", job_id=self.request.id)


@shared_task(name="bench.tasks.io_bound", bind=True)
def io_bound(self, wait: float = 0.05) -> None:
    """An outside call's wait (`wait` seconds, as a provider's API takes), then one ledger row:
    what most platform jobs are, and what more worker hosts make faster."""
    time.sleep(wait)
    with transaction.atomic():
        claim_effect(f"bench:io-bound:{self.request.id}", job_id=self.request.id)


def _stamp(token: str) -> float:
    started = time.time()
    get_redis_connection("default").rpush(LATENCY_KEY, f"{token} {started!r}")
    return started


@platform_task(name="bench.tasks.stamp_start")
def stamp_start(self, token: str) -> float:
    """Record when the job started (wall clock, same machine as the sender) for the latency bench."""
    return _stamp(token)


@shared_task(name="bench.tasks.bare_stamp_start")
def bare_stamp_start(token: str) -> float:
    """stamp_start on Celery's plain task class: the latency baseline."""
    return _stamp(token)


@shared_task(name="bench.tasks.bare_whatsapp_send")
def bare_whatsapp_send(to: str, body: str) -> str:
    """The baseline of the exactly-once cost: the same Twilio SDK call through the same client as
    tasks.notifications.send_whatsapp_message makes, on Celery's plain task class, with no row."""
    return get_whatsapp_client().send_text(to=to, body=body).sid
