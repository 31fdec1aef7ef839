"""Flower on RabbitMQ: it starts, keeps its basic auth, and sees the workers over AMQP. (Its Broker
page's queue lengths come from RabbitMQ's management plugin, FLOWER_BROKER_API:
tests/browser/test_flower_broker.py; /metrics and the ops dashboard read them over AMQP.)"""

from __future__ import annotations

import sys

import pytest
import requests

from tests.support.processes import ManagedProcess, free_port, start_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes, pytest.mark.rabbitmq]


def test_flower_on_rabbitmq_asks_for_credentials_and_lists_the_workers(rabbit_env):
    port = free_port()
    env = rabbit_env(FLOWER_BASIC_AUTH="ops:s3cret-pass")
    worker = start_worker(env, name="watched", concurrency=1)
    flower = ManagedProcess(
        [sys.executable, "-m", "celery", "-A", "tasks", "flower", f"--port={port}"], env, "flower"
    )
    api = f"http://127.0.0.1:{port}/api/workers"
    try:

        def workers():
            try:
                answer = requests.get(api, params={"refresh": "1"}, auth=("ops", "s3cret-pass"), timeout=5)
            except requests.ConnectionError:
                return None
            return answer.status_code == 200 and answer.json()

        listed = wait_until(
            workers, timeout=60, interval=0.5, what=lambda: f"flower's workers\n{flower.tail()}"
        )
        anonymous = requests.get(api, timeout=5)
    finally:
        flower.stop()
        worker.stop()
    assert anonymous.status_code == 401
    assert [name for name in listed if name.startswith("watched@")], listed
