"""A worker that dies mid-task: the job is redelivered and its effect happens once.

Real `celery worker` subprocesses (prefork) on a private redis-server or the run's RabbitMQ vhost
(the `broker` fixture runs a test on each), the test database."""

import os
import signal

import pytest
from django.conf import settings

from jobs.models import DeadLetter
from tests.conftest import broker_client
from tests.support.probe.models import ProbeEffect, ProbeExecution
from tests.support.processes import platform_env, start_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]

# Production timing: a dead worker's jobs return once its last heartbeat is a visibility timeout
# old, found by the next sweep of a live worker (jobs/brokers/redis_transport.py).
REDELIVERY_BOUND = (
    settings.CELERY_BROKER_VISIBILITY_TIMEOUT
    + settings.CELERY_BROKER_TRANSPORT_OPTIONS["unacked_restore_interval"]
)


def _started(marker: str, count: int = 1):
    return lambda: ProbeExecution.objects.filter(marker=marker).count() >= count


def test_job_of_a_worker_killed_outright_is_redelivered_and_its_effect_happens_once(
    database_url, private_redis, marker
):
    # The whole worker dies (main process and children, like a lost machine): its heartbeat
    # stops, and a live worker hands the unacknowledged job out again once the visibility
    # timeout has passed since the last one (45-65 s with the defaults).
    env = platform_env(database_url=database_url, redis_url=private_redis.url)
    first = start_worker(env, name="doomed", concurrency=1)
    try:
        broker_client(private_redis.url).send_task(
            "probe.effect", kwargs={"marker": marker, "sleep": 2.5}, queue="default"
        )
        wait_until(_started(marker), timeout=30, what="the job to start")
        first.kill(signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.stop()
    assert ProbeEffect.objects.filter(marker=marker).count() == 0

    second = start_worker(env, name="survivor", concurrency=1)
    try:
        wait_until(
            lambda: ProbeEffect.objects.filter(marker=marker).exists(),
            timeout=REDELIVERY_BOUND + 30,
            interval=0.5,
            what=lambda: f"the redelivered job to finish\n{second.tail()}",
        )
    finally:
        second.stop()
    assert ProbeExecution.objects.filter(marker=marker).count() == 2
    assert ProbeEffect.objects.filter(marker=marker).count() == 1


def test_job_of_a_killed_pool_process_is_requeued_at_once_and_its_effect_happens_once(
    database_url, broker, marker
):
    env = broker.env(database_url=database_url)
    worker = start_worker(env, name="pool", concurrency=1)
    try:
        broker_client(broker.url).send_task(
            "probe.effect", kwargs={"marker": marker, "sleep": 2.5}, queue="default"
        )
        wait_until(_started(marker), timeout=30, what="the job to start")
        child = ProbeExecution.objects.get(marker=marker).pid
        os.kill(child, signal.SIGKILL)  # task_reject_on_worker_lost: back to the queue
        wait_until(
            lambda: ProbeEffect.objects.filter(marker=marker).exists(),
            timeout=30,
            what=f"the requeued job to finish\n{worker.tail()}",
        )
    finally:
        worker.stop()
    executions = ProbeExecution.objects.filter(marker=marker)
    assert executions.count() == 2
    assert child not in {e.pid for e in executions.exclude(pid=child)}
    assert ProbeEffect.objects.filter(marker=marker).count() == 1


def test_every_job_killed_by_its_hard_time_limit_becomes_a_dead_letter(database_url, broker, marker):
    # Twice in one worker: the main process reports both (it has no per-job context of its own).
    env = broker.env(database_url=database_url)
    worker = start_worker(env, name="limits", concurrency=1)
    client = broker_client(broker.url)
    try:
        jobs = [
            client.send_task("probe.overrun", kwargs={"marker": f"{marker}-{n}"}, queue="default")
            for n in range(2)
        ]
        letters = wait_until(
            lambda: (lambda found: found if len(found) == 2 else None)(
                list(DeadLetter.objects.filter(task_id__in=[job.id for job in jobs]))
            ),
            timeout=40,
            what=lambda: f"two dead letters\n{worker.tail()}",
        )
    finally:
        worker.stop()
    assert all(letter.exception_type.endswith("TimeLimitExceeded") for letter in letters)
    assert {letter.kwargs["marker"] for letter in letters} == {f"{marker}-0", f"{marker}-1"}


def test_job_that_kills_its_worker_every_time_becomes_a_dead_letter_not_a_loop(database_url, broker, marker):
    env = broker.env(database_url=database_url)
    worker = start_worker(env, name="crash-loop", concurrency=1)
    try:
        job = broker_client(broker.url).send_task(
            "probe.kill_worker", kwargs={"marker": marker}, queue="default"
        )
        letter = wait_until(
            lambda: DeadLetter.objects.filter(task_id=job.id).first(),
            timeout=60,
            what=lambda: f"a dead letter\n{worker.tail()}",
        )
    finally:
        worker.stop()
    assert letter.exception_type == "jobs.task_base.WorkerKeptDying"
    # The first delivery and max_redeliveries (3) redeliveries ran; the next was refused.
    assert ProbeExecution.objects.filter(marker=marker).count() == 4
