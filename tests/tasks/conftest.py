"""Helpers for the business-task tests: run a task body as a given job, count what the fakes saw."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from django.core.cache import cache

from jobs.models import OutboxMessage


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    # The shared limiter's windows live in Redis and would leak between quick tests; tests about
    # pacing set RATE_LIMITS themselves.
    settings.RATE_LIMITS = {}


@pytest.fixture(autouse=True)
def _fresh_rate_cache():
    # Exchange rates are read cache first; earlier tests' values must not leak in.
    cache.delete_pattern("exchange_rates:*")
    yield
    cache.delete_pattern("exchange_rates:*")


def run_body(task, *, job_id: str | None = None, **kwargs):
    """Run a task's body in this process as job `job_id` (ladder level 2: no broker, no retry;
    its arguments are not validated: run_job does that)."""
    task.push_request(id=job_id or str(uuid.uuid4()), kwargs=kwargs, called_directly=False, retries=0)
    try:
        return task.run(**kwargs)
    finally:
        task.pop_request()


def run_job(task, *, job_id: str | None = None, **kwargs):
    """Run a job through the task base in this process, as a worker would: its arguments are
    validated before the body runs, and a failure is recorded as a dead letter. Not for jobs that
    hit a transient error: the base would publish a real retry."""
    task.push_request(
        id=job_id or str(uuid.uuid4()), args=(), kwargs=kwargs, called_directly=False, retries=0
    )
    try:
        return task(**kwargs)
    finally:
        task.pop_request()


def new_job_id() -> str:
    return str(uuid.uuid4())


def accepted_recipients(fake_twilio) -> Counter:
    """How many messages the fake Twilio accepted per recipient (E.164, without 'whatsapp:')."""
    return Counter(m["to"].removeprefix("whatsapp:") for m in list(fake_twilio.messages.values()))


def outbox_jobs(task_name: str) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(task_name=task_name).order_by("pk"))
