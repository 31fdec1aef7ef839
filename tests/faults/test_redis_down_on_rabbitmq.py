"""Issue 21: on RabbitMQ, Redis (REDIS_URL: the cache, the shared rate limits) unreachable from the
start stops no job and no schedule (the contract, section 3). Real processes: a web server, prefork
and threads workers and two beats on the run's RabbitMQ vhost, REDIS_URL on a port nobody listens
on, the fake Twilio; production timing settings throughout (the beat lease, Twilio's 10/s).

Before: the API accepted the job, but the worker logged "rate limiter for twilio unavailable
(ConnectionError): deferring the call" for as long as Redis was away, and beat (its lease was in
Redis) fired nothing."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
import redis
from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from http_api.keys import create_api_key
from integrations.ratelimit import Rate
from jobs.brokers import current_broker
from tests.factories import make_phone
from tests.faults.test_faults import _publish, _received
from tests.support.probe.models import ProbeExecution
from tests.support.processes import (
    ManagedProcess,
    RedisServer,
    platform_env,
    start_beat,
    start_web,
    start_worker,
    wait_until,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.processes,
    pytest.mark.rabbitmq,
    pytest.mark.timeout(420),
]

SENT_WITHIN_SECONDS = 30


@pytest.fixture
def absent_redis():
    """A Redis that is not there (yet): REDIS_URL names a free loopback port nobody listens on;
    `.start()` brings a real redis-server up on it later."""
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def env(database_url, rabbitmq, absent_redis, fake_twilio) -> dict[str, str]:
    return platform_env(
        database_url=database_url,
        redis_url=absent_redis.url,
        broker_url=rabbitmq.url,
        **fake_twilio.settings(),
    )


@pytest.fixture
def processes():
    started: list = []
    yield started
    for process in reversed(started):
        process.stop()


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _post_job(url: str, key: str, body: dict) -> tuple[int, dict, float]:
    request = urllib.request.Request(
        f"{url}/api/v1/jobs",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, json.loads(answer.read()), time.monotonic() - started


def test_a_job_through_the_api_and_a_delayed_one_are_each_sent_once_within_30_s(env, fake_twilio, processes):
    _, key = create_api_key(name="redis-down")
    web = start_web(env)
    processes.append(web)
    worker = start_worker(env, name="redis-down", concurrency=2)
    processes.append(worker)
    status, health = _get(f"{web.url}/healthz")
    assert health["checks"]["cache"]["ok"] is False  # Redis is down, and /healthz says so
    assert health["checks"]["database"]["ok"] and health["checks"]["broker"]["ok"], health
    assert status == 200 and health["status"] == "degraded", health

    by_api, by_delay = make_phone(1), make_phone(2)
    submitted = time.monotonic()
    status, job, seconds = _post_job(
        web.url,
        key,
        {
            "task": "tasks.notifications.send_whatsapp_message",
            "kwargs": {"to": by_api, "body": "via the API"},
        },
    )
    assert status == 202 and seconds < 2, (status, job, seconds)
    _publish(
        env,
        "from tasks.notifications import send_whatsapp_message\n"
        f"print(json.dumps(send_whatsapp_message.delay(to={by_delay!r}, body='via delay').id))",
    )
    wait_until(
        lambda: {by_api, by_delay} <= set(_received(fake_twilio)),
        timeout=SENT_WITHIN_SECONDS - (time.monotonic() - submitted),
        interval=0.2,
        what=lambda: f"both messages sent; got {dict(_received(fake_twilio))}\n{worker.tail()}",
    )
    time.sleep(3)  # a second copy would show by now
    assert _received(fake_twilio) == {by_api: 1, by_delay: 1}
    log = "\n".join(worker.output)
    assert "deferring the call" not in log
    assert "could not read paused queues" not in log
    # The fallback is announced once per process that met the outage (at most one per pool child).
    assert log.count("Redis unreachable") <= 2, worker.tail()


def _probe_schedule(marker: str, every_seconds: int) -> PeriodicTask:
    interval, _ = IntervalSchedule.objects.get_or_create(every=every_seconds, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(
        name=f"redis-down-{marker}",
        task="probe.beat_tick",
        kwargs=json.dumps({"marker": marker}),
        interval=interval,
    )


def _runs(marker: str) -> list[ProbeExecution]:
    return list(ProbeExecution.objects.filter(marker=marker).order_by("started_at"))


def _sends(beat: ManagedProcess, schedule: PeriodicTask) -> int:
    return sum(f"Sending due task {schedule.name} " in line for line in list(beat.output))


def test_two_beats_with_redis_down_fire_every_run_once_and_an_every_minute_schedule(env, marker, processes):
    """Production lease (BEAT_LOCK_LEASE_SECONDS, 30 s) and beat loop; a schedule due every minute
    and one every 5 s (many runs, to show none doubled)."""
    minutely = _probe_schedule(f"{marker}-1m", 60)
    frequent = _probe_schedule(f"{marker}-5s", 5)
    worker = start_worker(env, name="redis-down-beat", concurrency=2)
    processes.append(worker)
    beats = []
    for name in ("beat-a", "beat-b"):
        beat = start_beat(env, name=name)
        processes.append(beat)
        beats.append(beat)
        wait_until(lambda b=beat: b.saw("beat: Starting"), timeout=60, what=f"{name} to start")
    wait_until(lambda: any(b.saw("is now the leader") for b in beats), timeout=30, what="a leader")

    wait_until(
        lambda: len(_runs(f"{marker}-1m")) >= 1,
        timeout=60 + 30,
        interval=1,
        what=lambda: "the every-minute run\n" + "\n".join(b.tail(15) for b in beats),
    )
    wait_until(lambda: len(_runs(f"{marker}-5s")) >= 12, timeout=90, interval=1, what="12 runs every 5 s")
    for beat in reversed(beats):
        beat.stop()
    sent = sum(_sends(b, frequent) for b in beats)
    wait_until(lambda: len(_runs(f"{marker}-5s")) == sent, timeout=15, what="every sent run executed")

    leaders = [b for b in beats if b.saw("is now the leader")]
    assert len(leaders) == 1, "one beat led throughout; the other stood by"
    runs = _runs(f"{marker}-5s")
    assert len({r.job_id for r in runs}) == len(runs)
    gaps = [(b.started_at - a.started_at).total_seconds() for a, b in zip(runs, runs[1:], strict=False)]
    assert all(4.7 <= gap <= 5.8 for gap in gaps), gaps  # none doubled, none missed
    assert len(_runs(f"{marker}-1m")) == sum(_sends(b, minutely) for b in beats) >= 1
    for beat in beats:
        assert "cannot act" not in "\n".join(beat.output), beat.tail()


def _busiest_second(times: list[float]) -> int:
    return max((sum(1 for t in times if start <= t < start + 1.0) for start in times), default=0)


def test_a_bulk_send_on_two_workers_stays_within_twilios_limit_then_redis_returns(
    env, absent_redis, fake_twilio, processes
):
    """Two notifications workers (threads pool, as in production) and Twilio's production limit
    (10/s): while Redis is away each keeps its share, together at or under 10/s; once Redis is
    back the shared window is used again (its key is in Redis, and each worker says so)."""
    limit = Rate.parse(settings.RATE_LIMITS["twilio"])
    assert (limit.limit, limit.period) == (10, 1.0)
    workers = [
        start_worker(env, name=f"bulk-{n}", queues="notifications,default", concurrency=8, pool="threads")
        for n in range(2)
    ]
    processes.extend(workers)
    recipients = [make_phone(n) for n in range(100, 140)]
    _publish(
        env,
        "from tasks.notifications import send_bulk_whatsapp_notifications as bulk\n"
        f"print(json.dumps(bulk.delay(recipients={recipients!r}, body='Redis is down').id))",
    )
    wait_until(
        lambda: set(recipients) <= set(_received(fake_twilio)),
        timeout=120,
        interval=0.5,
        what=lambda: f"40 sent; got {len(_received(fake_twilio))}\n" + workers[0].tail(20),
    )
    outage_times = [request.at for request in fake_twilio.sent()]
    assert _busiest_second(outage_times) <= limit.limit, _busiest_second(outage_times)
    assert all(n == 1 for n in _received(fake_twilio).values())
    for worker in workers:
        assert worker.saw("Redis unreachable"), worker.tail()

    absent_redis.start()
    client = redis.Redis.from_url(absent_redis.url)
    more = [make_phone(n) for n in range(200, 230)]
    _publish(
        env,
        "from tasks.notifications import send_bulk_whatsapp_notifications as bulk\n"
        f"print(json.dumps(bulk.delay(recipients={more!r}, body='Redis is back').id))",
    )
    wait_until(
        lambda: set(more) <= set(_received(fake_twilio)),
        timeout=120,
        interval=0.5,
        what=lambda: "30 more sent\n" + workers[0].tail(20),
    )
    assert any(worker.saw("back to the shared limit") for worker in workers)
    assert client.exists("ratelimit:processes")
    times = [request.at for request in fake_twilio.sent()][len(outage_times) :]
    assert _busiest_second(times) <= limit.limit, _busiest_second(times)
    print(
        f"busiest second: {_busiest_second(outage_times)} while Redis was down, "
        f"{_busiest_second(times)} after it returned (limit {limit.limit}/s)"
    )


def test_the_crash_loop_count_on_rabbitmq_needs_no_redis(rabbitmq, absent_redis, settings):
    """docs/redis-outage.md: on RabbitMQ the redelivery count is the quorum queue's header; only a
    Redis broker keeps a counter in REDIS_URL."""
    settings.REDIS_URL = absent_redis.url
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": absent_redis.url}}
    settings.CELERY_BROKER_URL = rabbitmq.url

    assert current_broker().delivery_count("job", 0, {"x-delivery-count": 3}) == 3
