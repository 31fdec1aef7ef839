"""GET /healthz: every dependency checked, 503 when the database or broker fails, and an answer
within 2 s even when Redis and PostgreSQL hang."""

import json
import subprocess
import sys
import time

import pytest

from tests.support.hanging_server import HangingServer
from tests.support.processes import ROOT, platform_env

CHECKS = {"database", "cache", "broker", "workers", "beat"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("live_worker")
def test_healthz_reports_every_dependency_and_a_live_worker(client):
    response = client.get("/healthz")

    body = response.json()
    assert set(body["checks"]) == CHECKS
    for name in ("database", "cache", "broker", "workers"):
        assert body["checks"][name]["ok"] is True, (name, body)
    assert body["checks"]["workers"]["count"] >= 1
    # No beat runs in this test: reported, but not fatal.
    assert body["checks"]["beat"]["ok"] is False
    assert response.status_code == 200 and body["status"] == "degraded"


def _healthz_in_subprocess(**env) -> tuple[int, dict, float]:
    code = (
        "import json, sys, time\n"
        "sys.path.insert(0, 'platform')\n"
        "import django; django.setup()\n"
        "from django.test.utils import setup_test_environment; setup_test_environment()\n"
        "from django.test import Client\n"
        "from django.urls import resolve; resolve('/healthz')  # a serving process has its URLconf loaded\n"
        "started = time.monotonic(); r = Client().get('/healthz')\n"
        "seconds = time.monotonic() - started\n"
        "print(json.dumps({'status': r.status_code, 'body': r.json(), 'seconds': seconds}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    return answer["status"], answer["body"], answer["seconds"]


def test_healthz_answers_503_within_two_seconds_when_redis_and_postgres_hang():
    with HangingServer() as hung:
        env = platform_env(
            database_url=f"postgres://platform@127.0.0.1:{hung.port}/platform",
            redis_url=f"redis://127.0.0.1:{hung.port}/0",
        )
        started = time.monotonic()
        status, body, seconds = _healthz_in_subprocess(**env)
    assert seconds < 2.0, seconds
    assert status == 503 and body["status"] == "failing"
    assert set(body["checks"]) == CHECKS
    assert not any(check["ok"] for check in body["checks"].values())
    assert time.monotonic() - started < 30  # the whole subprocess, start-up included


def test_repeated_healthz_with_the_broker_hung_keeps_answering_and_checking_the_database(database_url):
    # A workers check used to publish its ping to the hung broker and hold a pool thread for
    # seconds (kombu retries the publish); overlapping requests (a load balancer and a monitor,
    # several gunicorn threads) stacked those up until the pool was full and every check, the
    # database's too, reported no answer. Here: 15 requests, in three waves of five at once.
    code = (
        "import json, sys, time\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "sys.path.insert(0, 'platform')\n"
        "import django; django.setup()\n"
        "from django.test.utils import setup_test_environment; setup_test_environment()\n"
        "from django.test import Client\n"
        "from django.urls import resolve; resolve('/healthz')\n"
        "def get(_):\n"
        "    started = time.monotonic(); r = Client().get('/healthz')\n"
        "    return {'seconds': time.monotonic() - started, 'checks': r.json()['checks']}\n"
        "with ThreadPoolExecutor(5) as requests:\n"
        "    waves = [list(requests.map(get, range(5))) for _ in range(3)]\n"
        "print(json.dumps(waves))\n"
    )
    with HangingServer() as hung:
        env = platform_env(database_url=database_url, redis_url=f"redis://127.0.0.1:{hung.port}/0")
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
    assert out.returncode == 0, out.stderr[-2000:]
    waves = json.loads(out.stdout.strip().splitlines()[-1])

    answers = [answer for wave in waves for answer in wave]
    assert len(answers) == 15
    assert all(answer["seconds"] < 2.0 for answer in answers), [a["seconds"] for a in answers]
    for answer in waves[-1]:
        assert answer["checks"]["database"]["ok"] is True, answer["checks"]
        assert answer["checks"]["workers"]["ok"] is False
