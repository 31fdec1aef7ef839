"""The outbox relay's "is it still queued?" on RabbitMQ. The broker cannot tell how long a quorum
queue's oldest message has waited, so any backlog in the job's queue may hold the job: the relay
leaves it rather than run it twice, and republishes it once the queue no longer holds it."""

from __future__ import annotations

import json

import pytest

from jobs.brokers.rabbitmq_broker import RabbitMQBroker
from jobs.models import OutboxMessage
from tests.support.probe.models import ProbeEffect, ProbeExecution
from tests.support.processes import run_django, start_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes, pytest.mark.rabbitmq]

RELAY = "from jobs.outbox import relay_outbox; import json; print(json.dumps(relay_outbox()))"


def _relay(env: dict) -> dict:
    relayed = run_django(RELAY, env)
    assert relayed.returncode == 0, relayed.stderr[-2000:]
    return json.loads(relayed.stdout.strip().splitlines()[-1])


def _waiting(url: str) -> int:
    (default,) = RabbitMQBroker(url).queue_depths(["default"])
    return default.depth


def test_relay_leaves_a_job_still_queued_on_rabbitmq_and_republishes_one_the_broker_lost(
    rabbit_env, rabbitmq, marker
):
    published = run_django(
        f"from jobs.outbox import enqueue_durably; enqueue_durably('probe.effect', marker={marker!r})",
        rabbit_env(),
    )
    assert published.returncode == 0, published.stderr[-2000:]
    assert _waiting(rabbitmq.url) == 1  # no worker yet: it waits in its queue

    # With the default OUTBOX_REPUBLISH_AFTER_SECONDS (900 s) nothing is due yet.
    assert _relay(rabbit_env())["republished"] == 0
    # Due at once: still in its queue (a backlog RabbitMQ cannot date), so not published again.
    due_now = rabbit_env(OUTBOX_REPUBLISH_AFTER_SECONDS="0")
    assert _relay(due_now)["republished"] == 0
    assert _waiting(rabbitmq.url) == 1

    rabbitmq.purge()  # the broker lost it
    assert _relay(due_now)["republished"] == 1
    assert _waiting(rabbitmq.url) == 1

    worker = start_worker(rabbit_env(), name="outbox", concurrency=1)
    try:
        wait_until(
            lambda: OutboxMessage.objects.filter(completed_at__isnull=False).exists(),
            timeout=30,
            what=lambda: f"the republished job to complete\n{worker.tail()}",
        )
    finally:
        worker.stop()
    assert ProbeExecution.objects.filter(marker=marker).count() == 1
    assert ProbeEffect.objects.filter(marker=marker).count() == 1
