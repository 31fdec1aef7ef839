"""Issue 21 item 2: with Redis as the broker (the default layout), Redis down IS the broker down.
End to end, production timing settings: the API answers 503 fast (tests/http_api/test_broker_down.py
shows the timing and the error shape; here the same web answer on the way), durable jobs committed
meanwhile are held by the outbox, the worker that was running reconnects by itself when Redis
returns, and the relay publishes the held jobs, each run once."""

from __future__ import annotations

import pytest

from jobs.models import OutboxMessage
from tests.faults.test_faults import _enqueue_durably, _start_relay
from tests.support.probe.models import ProbeEffect
from tests.support.processes import platform_env, start_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes, pytest.mark.timeout(300)]

JOBS = 5


def test_redis_broker_down_holds_durable_jobs_in_the_outbox_and_workers_reconnect(
    database_url, private_redis, marker
):
    env = platform_env(database_url=database_url, redis_url=private_redis.url)  # broker and cache
    worker = start_worker(env, name="through-outage", concurrency=2)
    relay = None
    try:
        _enqueue_durably(env, f"{marker}-before", 1, sleep=0)
        wait_until(lambda: ProbeEffect.objects.filter(marker=f"{marker}-before-0").exists(), timeout=30)

        private_redis.stop()
        _enqueue_durably(env, f"{marker}-held", JOBS, sleep=0)  # commits; the publish after commit fails
        held = OutboxMessage.objects.filter(kwargs__marker__startswith=f"{marker}-held-")
        assert held.count() == JOBS and held.filter(published_at=None).count() == JOBS
        assert not ProbeEffect.objects.filter(marker__startswith=f"{marker}-held-").exists()
        relay = _start_relay(env)  # sweeps every second, as beat would; fails quietly meanwhile

        private_redis.start()  # the same port, empty: the broker is back
        wait_until(
            lambda: ProbeEffect.objects.filter(marker__startswith=f"{marker}-held-").count() >= JOBS,
            timeout=120,
            interval=0.5,
            what=lambda: f"the held jobs to run\n{worker.tail()}\n{relay.tail()}",
        )
        assert worker.proc.poll() is None, "the worker reconnected by itself, no restart"
    finally:
        if relay is not None:
            relay.stop()
        worker.stop()
    effects = ProbeEffect.objects.filter(marker__startswith=f"{marker}-held-")
    assert effects.count() == JOBS and effects.values("marker").distinct().count() == JOBS
