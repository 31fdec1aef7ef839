"""The RabbitMQ server settings the platform ships (ops/rabbitmq/) agree with its task limits."""

from __future__ import annotations

import re

from django.conf import settings

from jobs.celery_app import app
from jobs.queues import QUEUE_NAMES
from tests.support.processes import ROOT

CONF = ROOT / "ops" / "rabbitmq" / "rabbitmq.conf"


def _longest_hard_time_limit() -> float:
    app.loader.import_default_modules()
    limits = [
        task.time_limit or app.conf.task_time_limit
        for task in app.tasks.values()
        if task.name.startswith("tasks.")
    ]
    return max(limits)


def test_consumer_timeout_outlasts_every_wait_of_an_unacknowledged_job():
    # A delivery not acknowledged within consumer_timeout closes its channel and is redelivered:
    # a job still running would run twice. A job is acknowledged once it finished (acks_late);
    # a worker consuming every queue may hold one per queue behind the one it runs; with native
    # delayed delivery no countdown waits unacknowledged in a worker.
    (configured,) = re.findall(r"^consumer_timeout\s*=\s*(\d+)\s*$", CONF.read_text(), re.M)
    assert int(configured) == settings.RABBITMQ_CONSUMER_TIMEOUT_SECONDS * 1000
    longest = _longest_hard_time_limit()
    assert longest >= 600
    assert settings.RABBITMQ_CONSUMER_TIMEOUT_SECONDS > len(QUEUE_NAMES) * longest
