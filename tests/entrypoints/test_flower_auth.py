"""Flower is never reachable without authentication (docs/contract.md section 3)."""

import subprocess
import sys

import pytest
import requests

from tests.support.processes import ROOT, ManagedProcess, free_port, platform_env, wait_until

pytestmark = pytest.mark.processes


def _flower_env(private_redis, **extra):
    return platform_env(
        database_url="sqlite:////tmp/flower-test.sqlite3", redis_url=private_redis.url, **extra
    )


def test_flower_refuses_to_start_without_basic_auth(private_redis):
    env = _flower_env(private_redis)
    env.pop("FLOWER_BASIC_AUTH", None)
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks", "flower", f"--port={free_port()}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "FLOWER_BASIC_AUTH is required" in done.stderr + done.stdout


def test_flower_answers_401_without_credentials_and_200_with_them(private_redis):
    port = free_port()
    env = _flower_env(private_redis, FLOWER_BASIC_AUTH="ops:s3cret-pass")
    flower = ManagedProcess(
        [sys.executable, "-m", "celery", "-A", "tasks", "flower", f"--port={port}"], env, "flower"
    )
    url = f"http://127.0.0.1:{port}/"
    try:

        def answers():
            try:
                return [requests.get(url, timeout=1)]  # a 401 Response is falsy
            except requests.ConnectionError:
                return None

        [anonymous] = wait_until(answers, timeout=30, what=f"flower to listen\n{flower.tail()}")
        assert anonymous.status_code == 401
        assert requests.get(url, auth=("ops", "wrong"), timeout=5).status_code == 401
        assert requests.get(url, auth=("ops", "s3cret-pass"), timeout=5).status_code == 200
    finally:
        flower.stop()
