"""GET /healthz with RabbitMQ as the broker: every check ok with a worker and beat running (beat's
lease and heartbeat in REDIS_URL), ok while one node of several answers, and 503 within 2 s when
none does. The web side runs in a subprocess: its Celery app reads the broker URL once."""

from __future__ import annotations

import pytest

from tests.jobs.test_healthz import CHECKS, _healthz_in_subprocess
from tests.support.hanging_server import HangingServer
from tests.support.processes import free_port, start_beat, start_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq]


@pytest.mark.processes
def test_healthz_on_rabbitmq_reports_broker_workers_and_beat_ok(rabbit_env):
    env = rabbit_env()
    worker = start_worker(env, name="healthy", concurrency=1)
    beat = start_beat(env, name="beat")
    try:
        wait_until(
            lambda: beat.saw("is now the leader"), timeout=30, what=lambda: f"beat to lead\n{beat.tail()}"
        )
        status, body, seconds = _healthz_in_subprocess(**env)
    finally:
        beat.stop()
        worker.stop()

    assert status == 200 and body["status"] == "ok", body
    assert set(body["checks"]) == CHECKS
    broker = body["checks"]["broker"]
    assert broker["broker"] == "rabbitmq" and list(broker["nodes"].values()) == ["ok"], broker
    assert body["checks"]["workers"]["count"] == 1
    assert body["checks"]["beat"]["ok"] is True
    assert seconds < 2.0


def test_healthz_broker_is_ok_while_one_node_of_several_answers(rabbit_env, rabbitmq):
    vhost = rabbitmq.url.rsplit("/", 1)[1]
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/{vhost}"
    env = rabbit_env(CELERY_BROKER_URL=f"{dead};{rabbitmq.url}")

    status, body, seconds = _healthz_in_subprocess(**env)

    nodes = body["checks"]["broker"]["nodes"]
    assert body["checks"]["broker"]["ok"] is True, body
    assert sorted(outcome == "ok" for outcome in nodes.values()) == [False, True], nodes
    assert status == 200 and seconds < 2.0  # degraded: no worker, no beat; not failing


def test_healthz_answers_503_within_two_seconds_when_no_rabbitmq_node_answers(rabbit_env):
    with HangingServer() as hung:
        nodes = [f"amqp://guest:guest@127.0.0.1:{port}//" for port in (free_port(), hung.port)]
        status, body, seconds = _healthz_in_subprocess(**rabbit_env(CELERY_BROKER_URL=";".join(nodes)))

    assert seconds < 2.0, seconds
    assert status == 503 and body["status"] == "failing"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["workers"]["ok"] is False
