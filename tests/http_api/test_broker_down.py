"""Broker down: POST /api/v1/jobs answers 503 broker_unavailable in the error shape within 2 s,
never a 500, and keeps no record of a job it could not publish.

Run in a subprocess whose REDIS_URL (broker and cache) is a stopped Redis or a socket that
never answers: the Celery app reads its broker settings once, at creation, so this is the only
honest way to give the web side a dead broker."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from http_api.models import AcceptedJob
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


def _post_in_subprocess(*, database_url: str, redis_url: str, key: str) -> list[dict]:
    env = platform_env(database_url=database_url, redis_url=redis_url, TEST_API_KEY=key)
    out = subprocess.run(
        [sys.executable, "-c", _CLIENT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _assert_refused_quickly(answers: list[dict]) -> None:
    print("seconds to 503:", [round(a["seconds"], 3) for a in answers])
    for answer in answers:
        assert answer["status"] == 503, answer
        assert answer["body"]["error"]["code"] == "broker_unavailable"
        assert set(answer["body"]["error"]) == {"code", "message", "details"}
        assert answer["retry_after"] == "5"
        assert answer["seconds"] < 2.0, answer
    assert not AcceptedJob.objects.exists()


def test_a_stopped_broker_is_503_within_two_seconds_and_nothing_is_recorded(database_url, api_key):
    dead_port = free_port()  # nothing listens here

    answers = _post_in_subprocess(
        database_url=database_url, redis_url=f"redis://127.0.0.1:{dead_port}/0", key=api_key.key
    )

    _assert_refused_quickly(answers)


def test_a_hung_broker_is_503_within_two_seconds_and_nothing_is_recorded(database_url, api_key):
    with HangingServer() as hung:
        answers = _post_in_subprocess(
            database_url=database_url, redis_url=f"redis://127.0.0.1:{hung.port}/0", key=api_key.key
        )

    _assert_refused_quickly(answers)
