"""Two real `celery worker` processes sharing Twilio's rate limit through Redis: counted at the
fake Twilio, no one-second window ever holds more than the limit, and every message goes out."""

import pytest

from tests.conftest import broker_client
from tests.support.fakes.twilio import FakeTwilio
from tests.support.processes import platform_env, start_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]

LIMIT = 4  # messages per second
MESSAGES = 16


def _succeeded(worker) -> int:
    # The worker's task-outcome line (jobs/operations/task_observability.py), one per execution.
    return sum(1 for line in list(worker.output) if "task probe.twilio_send SUCCESS" in line)


def _busiest_second(times: list[float]) -> int:
    """The most requests in any window [t, t + 1 s) starting at a request."""
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


def test_two_workers_sharing_a_twilio_limit_never_exceed_it_in_any_second(
    database_url, private_redis, marker
):
    fake = FakeTwilio().start()
    env = platform_env(
        database_url=database_url,
        redis_url=private_redis.url,
        RATE_LIMITS=f"twilio={LIMIT}/s",
        **fake.settings(),
    )
    workers = []
    try:
        workers = [start_worker(env, name=f"twilio{i}", queues="default", concurrency=2) for i in range(2)]
        client = broker_client(private_redis.url)
        for _ in range(MESSAGES):
            client.send_task(
                "probe.twilio_send", kwargs={"marker": marker, "to": "+14165550123"}, queue="default"
            )
        # Wait for the jobs to finish, not only for the requests: stopping a worker signals its
        # pool children too, and a job killed between its request and its ack is redelivered.
        wait_until(
            lambda: sum(_succeeded(w) for w in workers) >= MESSAGES,
            timeout=90,
            what=f"all jobs to succeed\n{workers[0].tail()}\n{workers[1].tail()}",
        )
    finally:
        for worker in workers:
            worker.stop()
        fake.stop()

    assert all(_succeeded(w) for w in workers)  # both workers took part
    times = sorted(request.at for request in fake.sent())
    assert len(times) == MESSAGES  # every message sent, none twice
    assert _busiest_second(times) <= LIMIT
    # The limit did bite: 16 messages at 4/s cannot all go out in less than 3 s.
    assert times[-1] - times[0] >= MESSAGES / LIMIT - 1
    assert all(f"probe {marker}" == r.form["Body"] for r in fake.sent())
