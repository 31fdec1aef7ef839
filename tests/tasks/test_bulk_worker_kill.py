"""A bulk WhatsApp send to 200 recipients through the fake Twilio, with its real `celery worker`
killed by SIGKILL twice part way and restarted: every recipient gets the message exactly once,
counted at the fake server. A message in flight when its worker died is found at Twilio by the
next attempt (platform/messaging/whatsapp.py, reconciliation) instead of being sent again.

Production timing settings throughout: the killed worker's job comes back once its last
heartbeat is a visibility timeout old (about a minute per kill), and a row left "sending" is
resent only after the send-once lease of the default integration timeouts."""

from __future__ import annotations

import json
import signal
import uuid

import pytest
from django_celery_results.models import TaskResult

from tests.conftest import broker_client
from tests.factories import make_phone
from tests.support.processes import platform_env, start_worker, wait_until
from tests.tasks.conftest import accepted_recipients

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes, pytest.mark.timeout(420)]

RECIPIENTS = 200
KILL_AT = (60, 130)  # accepted messages after which the worker is killed


def test_bulk_send_survives_sigkilled_workers_and_reaches_everyone_once(
    database_url, private_redis, fake_twilio
):
    env = platform_env(
        database_url=database_url,
        redis_url=private_redis.url,
        **fake_twilio.settings(),
        RATE_LIMITS="twilio=10/s",
    )
    recipients = [make_phone(n) for n in range(1, RECIPIENTS + 1)]
    job_id = str(uuid.uuid4())
    workers = []

    def start(name: str):
        worker = start_worker(env, name=name, queues="notifications", concurrency=2)
        workers.append(worker)
        return worker

    try:
        worker = start("bulk-1")
        broker_client(private_redis.url).send_task(
            "tasks.notifications.send_bulk_whatsapp_notifications",
            kwargs={"recipients": recipients, "body": "The port of Douala reopens Monday."},
            task_id=job_id,
            queue="notifications",
        )
        for number, threshold in enumerate(KILL_AT, start=2):
            wait_until(
                lambda t=threshold: len(fake_twilio.messages) >= t,
                timeout=150,
                interval=0.2,
                what=lambda t=threshold, w=worker: f"{t} messages accepted\n{w.tail()}",
            )
            worker.kill(signal.SIGKILL)  # the whole worker: main process and pool children
            worker.proc.wait(10)
            worker = start(f"bulk-{number}")
        done = wait_until(
            lambda: TaskResult.objects.filter(task_id=job_id, status="SUCCESS").first(),
            timeout=180,
            interval=0.5,
            what=lambda: f"the bulk job to finish\n{worker.tail()}",
        )
    finally:
        for w in workers:
            w.stop()

    counts = accepted_recipients(fake_twilio)
    twice = sorted(number for number, n in counts.items() if n > 1)
    result = json.loads(done.result)
    print(
        f"\nbulk send with {len(KILL_AT)} SIGKILLs: {len(fake_twilio.messages)} messages accepted for "
        f"{RECIPIENTS} recipients; received twice: {len(twice)}; final result {result}"
    )
    assert set(counts) == set(recipients), "every recipient received the message"
    assert twice == [], "no recipient received it twice"
    assert result["recipients"] == RECIPIENTS
    assert result["sent"] + result["skipped"] == RECIPIENTS and result["failed"] == 0
