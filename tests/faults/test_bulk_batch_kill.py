"""A fanned-out bulk send of 500 recipients with its notifications worker (threads pool, as in
production) SIGKILLed once mid-send: the batch ends at 500 sent, nobody received it twice (the fake
Twilio counts per recipient) and the batch's counts equal its recipient rows.

Production timing settings: the killed worker's jobs come back once their heartbeat is a
visibility timeout old, and a row left "sending" by the kill is looked up at Twilio (and not sent
again) once the send-once lease of the default integration timeouts has lapsed."""

from __future__ import annotations

import json
import signal

import pytest
from django.db.models import Count
from django_celery_results.models import TaskResult

from messaging.batches import batch_progress
from messaging.models import BulkBatch, WhatsAppMessage
from tests.factories import make_phone
from tests.faults.test_faults import _env, _publish, _received
from tests.support.processes import start_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes, pytest.mark.timeout(480)]

RECIPIENTS = 500
KILL_AFTER = 150  # messages accepted when the worker is killed


def test_bulk_batch_of_500_with_its_worker_sigkilled_ends_at_500_sent_none_twice(
    database_url, private_redis, fake_twilio, fault_figures
):
    # 40/s: the kill lands mid-send (about 4 s in) with chunk jobs running and others waiting
    # on their rate-limit countdowns, all held by the worker that dies.
    env = _env(
        database_url, private_redis, private_redis.url, **fake_twilio.settings(), RATE_LIMITS="twilio=40/s"
    )
    recipients = [make_phone(n) for n in range(1, RECIPIENTS + 1)]

    def start(name: str):
        return start_worker(env, name=name, queues="notifications", concurrency=16, pool="threads")

    worker = start("batch-0")
    try:
        job_id = _publish(
            env,
            "from tasks.notifications import send_bulk_whatsapp_notifications as bulk\n"
            f"job = bulk.delay(recipients={recipients!r}, body='The port of Douala reopens.')\n"
            "print(json.dumps(job.id))",
        )
        wait_until(
            lambda: len(fake_twilio.messages) >= KILL_AFTER,
            timeout=120,
            interval=0.05,
            what=lambda: f"{KILL_AFTER} messages accepted\n{worker.tail()}",
        )
        worker.kill(signal.SIGKILL)
        worker.proc.wait(10)
        sent_at_kill = len(fake_twilio.messages)
        in_flight_at_kill = WhatsAppMessage.objects.filter(scope=job_id, status="sending").count()
        worker = start("batch-1")
        done = wait_until(
            lambda: TaskResult.objects.filter(task_id=job_id, status="SUCCESS").first(),
            timeout=360,
            interval=0.5,
            what=lambda: f"the bulk job to finish; {len(fake_twilio.messages)} sent\n{worker.tail()}",
        )
    finally:
        worker.stop()

    received = _received(fake_twilio)
    twice = sorted(number for number, n in received.items() if n > 1)
    batch = BulkBatch.objects.get(job_id=job_id)
    progress = batch_progress(batch)
    rows = dict(WhatsAppMessage.objects.filter(scope=job_id).values_list("status").annotate(n=Count("pk")))
    fault_figures(
        submitted=RECIPIENTS,
        faults=1,
        effects=sum(received.values()),
        lost=len(set(recipients) - set(received)),
        duplicated=len(twice),
        note=f"killed at {sent_at_kill} sent with {in_flight_at_kill} in flight; batch {progress.state}, "
        f"{progress.sent} sent, {progress.failed} failed, {progress.pending} pending; rows {rows}",
    )
    assert 0 < sent_at_kill < RECIPIENTS
    assert set(received) == set(recipients), "every recipient received the message"
    assert twice == [], "no recipient received it twice"
    assert (progress.state, progress.total, progress.sent, progress.failed, progress.pending) == (
        "done",
        RECIPIENTS,
        RECIPIENTS,
        0,
        0,
    )
    assert rows == {"sent": RECIPIENTS}, "the counts equal the recipient rows"
    result = json.loads(done.result)
    assert result["recipients"] == RECIPIENTS and result["sent"] + result["skipped"] == RECIPIENTS
