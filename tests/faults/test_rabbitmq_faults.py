"""A fault on RabbitMQ only (quorum queues, the run's vhost), with production settings: a job whose
whole worker dies mid-run. RabbitMQ returns what a dead connection held at once, so no timeout
stands between a crash and redelivery. (The scenarios of test_faults.py run on both brokers.)"""

from __future__ import annotations

import time

import pytest

from tests.support.probe.models import ProbeEffect, ProbeExecution
from tests.support.processes import platform_env, run_django, start_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes, pytest.mark.rabbitmq]


def _effects(prefix: str) -> tuple[int, int]:
    """(distinct markers with an effect, total effect rows) for markers starting with prefix."""
    rows = ProbeEffect.objects.filter(marker__startswith=prefix)
    return rows.values("marker").distinct().count(), rows.count()


@pytest.fixture
def env(database_url, rabbitmq, private_redis) -> dict[str, str]:
    # Production settings: nothing shortened.
    return platform_env(database_url=database_url, redis_url=private_redis.url, broker_url=rabbitmq.url)


def test_rabbitmq_job_of_a_dead_worker_is_redelivered_at_once(env, marker, fault_figures):
    # A job far longer than any test: on Redis it would wait for the visibility timeout.
    first = start_worker(env, name="doomed", concurrency=1)
    try:
        sent = run_django(
            f"from tests.support.probe.tasks import effect\neffect.delay(marker={marker!r}, sleep=20)\n", env
        )
        assert sent.returncode == 0, sent.stderr[-2000:]
        wait_until(
            lambda: ProbeExecution.objects.filter(marker=marker).exists(),
            timeout=30,
            what=lambda: f"the job to start\n{first.tail()}",
        )
        first.kill()
        first.proc.wait(10)
        killed_at = time.time()
    finally:
        first.stop()
    second = start_worker(env, name="survivor", concurrency=1)
    try:
        rerun = wait_until(
            lambda: ProbeExecution.objects.filter(marker=marker).order_by("started_at")[1:2].first(),
            timeout=30,
            what=lambda: f"the job to run again\n{second.tail()}",
        )
        wait_until(lambda: ProbeEffect.objects.filter(marker=marker).exists(), timeout=40, what="the effect")
    finally:
        second.stop()
    back_after = rerun.started_at.timestamp() - killed_at
    fault_figures(
        submitted=1,
        faults=1,
        effects=ProbeEffect.objects.filter(marker=marker).count(),
        lost=0,
        duplicated=ProbeEffect.objects.filter(marker=marker).count() - 1,
        note=f"RabbitMQ: running again {back_after:.1f} s after its worker died (restart included)",
    )
    assert back_after < 20  # not a visibility timeout: as soon as a worker is there to take it
    assert ProbeExecution.objects.filter(marker=marker).count() == 2
    assert ProbeEffect.objects.filter(marker=marker).count() == 1
