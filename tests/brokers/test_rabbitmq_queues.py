"""On RabbitMQ the platform's queues are quorum queues, and a delay (countdown, ETA, retry) waits in
the broker, not in a worker: a worker killed during a countdown loses nothing, and nobody runs the
job before it is due. Real `celery worker` subprocesses on the run's vhost, production settings."""

from __future__ import annotations

import time

import pytest

from jobs.brokers.rabbitmq_broker import RabbitMQBroker
from jobs.queues import QUEUE_NAMES
from tests.conftest import broker_client
from tests.support.probe.models import ProbeEffect, ProbeExecution
from tests.support.processes import run_django, start_worker, wait_until
from tests.support.rabbitmq import DELAY_QUEUES

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes, pytest.mark.rabbitmq]


def _waiting_in_delay_queues(url: str) -> int:
    return sum(queue.depth for queue in RabbitMQBroker(url).queue_depths(DELAY_QUEUES))


def test_every_platform_queue_is_a_quorum_queue_on_a_topic_exchange(rabbit_env, rabbitmq):
    worker = start_worker(rabbit_env(), name="declarer", concurrency=1)
    worker.stop()

    queues = rabbitmq.listed("queues", "name", "type", "durable")
    exchanges = rabbitmq.listed("exchanges", "name", "type", "durable")
    for name in QUEUE_NAMES:
        assert queues[name] == ["quorum", "true"], (name, queues[name])
        assert exchanges[name] == ["topic", "true"], (name, exchanges[name])
    # The delays themselves wait in quorum queues too: a countdown survives a node's loss.
    assert {queues[name][0] for name in DELAY_QUEUES} == {"quorum"}
    # Quorum queues refuse global QoS: the worker noticed and uses a per-consumer prefetch.
    assert worker.saw("Global QoS is disabled")


def test_a_countdown_waits_in_the_broker_and_runs_once_when_due_though_its_worker_was_killed(
    rabbit_env, rabbitmq, marker
):
    env = rabbit_env()
    countdown = 10
    first = start_worker(env, name="countdown-holder", concurrency=1)
    try:
        published = run_django(
            "import time\nfrom tests.support.probe.tasks import effect\n"
            f"effect.apply_async(kwargs={{'marker': {marker!r}}}, countdown={countdown})\n"
            "print(time.time())\n",
            env,
        )
        assert published.returncode == 0, published.stderr[-2000:]
        published_at = float(published.stdout.strip().splitlines()[-1])

        # In RabbitMQ's delay queues, not reserved by the worker.
        wait_until(lambda: _waiting_in_delay_queues(rabbitmq.url) == 1, timeout=5, what="the delayed job")
        scheduled = broker_client(rabbitmq.url).control.inspect(timeout=1).scheduled() or {}
        assert scheduled and all(held == [] for held in scheduled.values()), scheduled

        first.kill()  # SIGKILL, main process and children: nothing of the job is lost with it
        first.proc.wait(10)
    finally:
        first.stop()
    assert time.time() < published_at + countdown, "the countdown ran out before the kill"

    second = start_worker(env, name="countdown-runner", concurrency=1)
    try:
        wait_until(
            lambda: ProbeEffect.objects.filter(marker=marker).exists(),
            timeout=countdown + 30,
            what=lambda: f"the delayed job to run\n{second.tail()}",
        )
    finally:
        second.stop()
    execution = ProbeExecution.objects.get(marker=marker)  # once
    waited = execution.started_at.timestamp() - published_at
    print(f"\ncountdown {countdown} s: ran {waited:.1f} s after publishing, once")
    assert countdown - 0.5 <= waited < countdown + 15
    assert ProbeEffect.objects.filter(marker=marker).count() == 1


def test_retries_with_sub_second_backoff_are_published_and_run(rabbit_env, rabbitmq, marker):
    # Native delayed delivery waits whole seconds and Celery raises for 0 < countdown < 1: the
    # broker seam rounds such a delay up to one second (jobs/brokers/rabbitmq_broker.py).
    worker = start_worker(rabbit_env(), name="sub-second", concurrency=1)
    try:
        # probe.flaky: retry_backoff_base 0.5 s, so its first retry waits 0.25-0.5 s.
        result = broker_client(rabbitmq.url).send_task(
            "probe.flaky", kwargs={"marker": marker, "failures": 2}, queue="default"
        )
        wait_until(
            lambda: ProbeExecution.objects.filter(marker=marker).count() == 3,
            timeout=30,
            what=lambda: f"two retries\n{worker.tail()}",
        )
        wait_until(lambda: result.id and worker.saw("probe.flaky SUCCESS"), timeout=10, what="success")
    finally:
        worker.stop()
    assert not worker.saw("countdown must be a positive number")
