"""Broker down: POST /api/v1/jobs answers 503 broker_unavailable in the error shape at once
(the publish's own deadline, not the broker socket's timeout), never a 500, and keeps no record
of a job it could not publish. On each broker: a Redis broker (REDIS_URL, broker and cache,
stopped or hung) and RabbitMQ (CELERY_BROKER_URL on a closed port or a socket that never
answers, one node or several; the cache's Redis fine).

Run in a subprocess: the Celery app reads its broker settings once, at creation, so this is the
only honest way to give the web side a dead broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

from http_api.models import AcceptedJob
from jobs.brokers.rabbitmq_broker import RabbitMQBroker
from tests.support.hanging_server import HangingServer
from tests.support.processes import ROOT, free_port, platform_env

pytestmark = pytest.mark.django_db(transaction=True)

_CLIENT = """
import json, os, sys, time
sys.path.insert(0, "platform")
import django
django.setup()
from django.test import Client
from http_api.models import AcceptedJob
from django.urls import resolve
resolve("/api/v1/jobs")  # a serving process has its URLconf (and the API's schemas) loaded
client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION="Bearer " + os.environ["TEST_API_KEY"])
answers = []
for attempt in range(2):  # the second one meets a pool that already failed once
    started = time.monotonic()
    r = client.post("/api/v1/jobs", data=json.dumps({"task": "tasks.fx.update_exchange_rates"}),
                    content_type="application/json", HTTP_IDEMPOTENCY_KEY="down-1")
    answers.append({"status": r.status_code, "body": r.json(), "retry_after": r.get("Retry-After"),
                    "seconds": time.monotonic() - started})
print(json.dumps(answers))
"""


def _post_in_subprocess(
    *, database_url: str, redis_url: str, key: str, broker_url: str | None = None
) -> list[dict]:
    env = platform_env(
        database_url=database_url, redis_url=redis_url, broker_url=broker_url, TEST_API_KEY=key
    )
    out = subprocess.run(
        [sys.executable, "-c", _CLIENT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


# What bounds a publish to a broker that never answers, if not the API's own deadline (about
# 2 x API_PUBLISH_TIMEOUT_SECONDS a node, http_api/publish.py): the broker socket's timeout. An
# answer sooner than it shows the deadline at work; the seconds themselves are printed, not
# asserted (a loaded machine stretches them: they are a benchmark's business).
UNBOUNDED_WAIT = settings.CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"]


def _assert_refused_quickly(answers: list[dict]) -> None:
    print("seconds to 503:", [round(a["seconds"], 3) for a in answers])
    for answer in answers:
        assert answer["status"] == 503, answer
        assert answer["body"]["error"]["code"] == "broker_unavailable"
        assert set(answer["body"]["error"]) == {"code", "message", "details"}
        assert answer["retry_after"] == "5"
        assert answer["seconds"] < UNBOUNDED_WAIT, answer
    assert not AcceptedJob.objects.exists()


def _broker_at(kind: str, port: int) -> dict[str, str | None]:
    """The web side's broker at `port`: a Redis that is also the cache, or a RabbitMQ node."""
    if kind == "redis":
        return {"redis_url": f"redis://127.0.0.1:{port}/0", "broker_url": None}
    return {"redis_url": os.environ["REDIS_URL"], "broker_url": f"amqp://guest:guest@127.0.0.1:{port}//"}


BROKERS = ["redis", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)]


@pytest.mark.parametrize("kind", BROKERS)
def test_a_stopped_broker_is_503_within_two_seconds_and_nothing_is_recorded(database_url, api_key, kind):
    dead_port = free_port()  # nothing listens here

    answers = _post_in_subprocess(database_url=database_url, key=api_key.key, **_broker_at(kind, dead_port))

    _assert_refused_quickly(answers)


@pytest.mark.parametrize("kind", BROKERS)
def test_a_hung_broker_is_503_within_two_seconds_and_nothing_is_recorded(database_url, api_key, kind):
    with HangingServer() as hung:
        answers = _post_in_subprocess(
            database_url=database_url, key=api_key.key, **_broker_at(kind, hung.port)
        )

    _assert_refused_quickly(answers)


@pytest.mark.rabbitmq
def test_three_rabbitmq_nodes_down_or_hung_are_503_within_two_seconds(database_url, api_key):
    with HangingServer() as first, HangingServer() as third:
        nodes = [f"amqp://guest:guest@127.0.0.1:{port}//" for port in (first.port, free_port(), third.port)]
        answers = _post_in_subprocess(
            database_url=database_url,
            redis_url=os.environ["REDIS_URL"],
            broker_url=";".join(nodes),
            key=api_key.key,
        )

    _assert_refused_quickly(answers)


@pytest.mark.rabbitmq
def test_with_its_first_rabbitmq_node_down_the_api_publishes_to_the_next(database_url, api_key, rabbitmq):
    vhost = rabbitmq.url.rsplit("/", 1)[1]
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/{vhost}"

    answers = _post_in_subprocess(
        database_url=database_url,
        redis_url=os.environ["REDIS_URL"],
        broker_url=f"{dead};{rabbitmq.url}",
        key=api_key.key,
    )

    print("seconds to 202:", [round(a["seconds"], 3) for a in answers])
    assert [answer["status"] for answer in answers] == [202, 202], answers
    assert all(answer["seconds"] < UNBOUNDED_WAIT for answer in answers), answers
    assert answers[0]["body"]["id"] == answers[1]["body"]["id"]  # same Idempotency-Key, one job
    (default,) = [q for q in RabbitMQBroker(rabbitmq.url).queue_depths(["default"])]
    assert default.depth == 1
