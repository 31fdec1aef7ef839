"""On Redis, a live worker's jobs are never run twice and a dead worker's come back within about a
minute (jobs/brokers/redis_transport.py: live workers heartbeat what they hold).

The slow tests run real `celery worker` subprocesses on a private redis-server with the
production timing settings: the default visibility timeout (60 s), heartbeat and sweep."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime

import pytest
import redis
from django.conf import settings
from kombu import Connection, Exchange, Queue

from jobs.brokers.redis_transport import Transport
from tasks.app import app as platform_app
from tests.conftest import broker_client
from tests.support.probe.models import ProbeEffect, ProbeExecution
from tests.support.processes import platform_env, run_django, start_worker, wait_until
from tests.support.redis_broker import held_task_ids, holds_nothing, index_scores

TIMEOUT = settings.CELERY_BROKER_VISIBILITY_TIMEOUT
OPTIONS = settings.CELERY_BROKER_TRANSPORT_OPTIONS
HEARTBEAT = OPTIONS["unacked_heartbeat_interval"]
SWEEP = OPTIONS["unacked_restore_interval"]
# Longer than the timeout plus a sweep: without a heartbeat, a job held this long is redelivered.
OUTLIVES_TIMEOUT = TIMEOUT + SWEEP + 10


def _executions(marker: str) -> int:
    return ProbeExecution.objects.filter(marker=marker).count()


def _effects(marker: str) -> int:
    return ProbeEffect.objects.filter(marker=marker).count()


# --- the transport itself, on a real redis-server, no worker ---------------------------------------


def test_the_heartbeat_transport_is_chosen_for_a_redis_broker_and_only_for_it(private_redis):
    assert platform_app.conf.broker_transport == "jobs.brokers.redis_transport:Transport"
    with platform_app.connection_for_read() as conn:
        assert isinstance(conn.transport, Transport)
    other = run_django(
        "from django.conf import settings; print(settings.CELERY_BROKER_TRANSPORT)",
        platform_env(database_url="sqlite://", redis_url=private_redis.url, CELERY_BROKER_URL="amqp://h//"),
    )
    assert other.returncode == 0, other.stderr[-2000:]
    assert other.stdout.strip() == "None"


def _consume_one(conn: Connection, queue: Queue):
    conn.Producer().publish(
        {"job": 1}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue]
    )
    received = []
    with conn.Consumer(queue, callbacks=[lambda _body, message: received.append(message)]):
        conn.drain_events(timeout=5)
    return received[0]


@pytest.fixture
def held_message(private_redis):
    """A message consumed through the heartbeat transport and not acknowledged, its index entry
    aged past the visibility timeout as if its holder had stopped beating: (channel, message)."""
    queue = Queue("heartbeat-probe", Exchange("heartbeat-probe"), "heartbeat-probe")
    with Connection(
        private_redis.url,
        transport="jobs.brokers.redis_transport:Transport",
        transport_options={"visibility_timeout": TIMEOUT},
    ) as conn:
        message = _consume_one(conn, queue)
        channel = conn.default_channel
        aged = time.time() - TIMEOUT - 1
        redis.Redis.from_url(private_redis.url).zadd("unacked_index", {message.delivery_tag: aged})
        yield channel, message


def test_a_heartbeat_refreshes_the_messages_its_worker_holds(held_message, private_redis):
    channel, message = held_message
    before = time.time()
    assert channel.qos.heartbeat() == 1
    assert index_scores(private_redis.url)[message.delivery_tag] >= before


def test_a_channel_closed_after_its_connection_is_a_connection_error_and_keeps_its_messages(
    held_message, private_redis
):
    # What Celery's consumer meets when Redis restarted under it: kombu has detached the
    # transport from the connection, then closes the channel (which restores what it holds).
    channel, message = held_message
    channel.connection.client = None

    with pytest.raises(redis.exceptions.ConnectionError):
        channel.close()
    # Nothing lost: the message is still recorded as held, for a sweep to restore.
    assert message.delivery_tag in index_scores(private_redis.url)


def test_a_heartbeat_never_brings_back_an_acknowledged_message(held_message, private_redis):
    channel, message = held_message
    message.ack()
    channel.qos.heartbeat()
    assert index_scores(private_redis.url) == {}
    assert held_task_ids(private_redis.url) == set()


def test_a_sweep_restores_a_message_its_holder_stopped_vouching_for_marked_redelivered(
    held_message, private_redis
):
    channel, message = held_message
    channel.qos.restore_visible(interval=1)
    assert index_scores(private_redis.url) == {}
    restored = redis.Redis.from_url(private_redis.url).lrange("heartbeat-probe", 0, -1)
    assert len(restored) == 1 and b'"redelivered": true' in restored[0]


def test_a_sweep_leaves_a_message_its_holder_refreshed_after_the_scan(held_message, private_redis):
    # The sweep found the entry stale; the holder's heartbeat lands before the restore: the
    # restore re-reads the score inside its transaction and leaves the message with its holder.
    channel, message = held_message
    channel.qos.heartbeat()
    channel.qos.restore_if_still_stale(message.delivery_tag)
    assert message.delivery_tag in index_scores(private_redis.url)
    assert redis.Redis.from_url(private_redis.url).llen("heartbeat-probe") == 0


def test_a_consumer_without_an_event_loop_beats_from_its_poll(private_redis):
    # drain_events() consumers (gevent/eventlet pools, plain kombu consumers) have no timer: the
    # poll itself beats once one is due. (A short interval: this shows the mechanism, not a fault.)
    queue = Queue("heartbeat-poll", Exchange("heartbeat-poll"), "heartbeat-poll")
    with Connection(
        private_redis.url,
        transport="jobs.brokers.redis_transport:Transport",
        transport_options={"visibility_timeout": TIMEOUT, "unacked_heartbeat_interval": 0.2},
    ) as conn:
        message = _consume_one(conn, queue)
        earlier = time.time() - 10
        redis.Redis.from_url(private_redis.url).zadd("unacked_index", {message.delivery_tag: earlier})
        with conn.Consumer(queue, callbacks=[]):

            def polled_and_refreshed() -> bool:
                try:
                    conn.drain_events(timeout=0.05)
                except TimeoutError:
                    pass
                return index_scores(private_redis.url)[message.delivery_tag] > earlier + 5

            wait_until(polled_and_refreshed, timeout=5, what="a poll to refresh the held message")


# --- real workers, production timing settings --------------------------------------------------


@pytest.mark.parametrize("pool", ["prefork", "threads"])
@pytest.mark.django_db(transaction=True)
@pytest.mark.processes
def test_a_job_running_longer_than_the_visibility_timeout_runs_exactly_once(
    database_url, private_redis, marker, pool
):
    env = platform_env(database_url=database_url, redis_url=private_redis.url)
    # Two pool slots: a redelivered copy would find a free one and run beside the first.
    worker = start_worker(env, name=f"long-run-{pool}", concurrency=2, pool=pool)
    try:
        broker_client(private_redis.url).send_task(
            "probe.effect", kwargs={"marker": marker, "sleep": OUTLIVES_TIMEOUT}, queue="default"
        )
        wait_until(
            lambda: _effects(marker),
            timeout=OUTLIVES_TIMEOUT + 30,
            interval=0.5,
            what=lambda: f"the long job to finish\n{worker.tail()}",
        )
        wait_until(
            lambda: holds_nothing(private_redis.url, ["default"]),
            timeout=10,
            what="the broker to hold nothing more",
        )
    finally:
        worker.stop()
    assert _executions(marker) == 1
    assert _effects(marker) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.processes
def test_a_countdown_longer_than_the_visibility_timeout_runs_exactly_once(
    database_url, private_redis, marker
):
    env = platform_env(database_url=database_url, redis_url=private_redis.url)
    worker = start_worker(env, name="long-countdown", concurrency=2)
    try:
        job = broker_client(private_redis.url).send_task(
            "probe.effect", kwargs={"marker": marker}, queue="default", countdown=OUTLIVES_TIMEOUT
        )
        wait_until(
            lambda: job.id in held_task_ids(private_redis.url), timeout=30, what="the worker to hold it"
        )
        wait_until(
            lambda: _effects(marker),
            timeout=OUTLIVES_TIMEOUT + 30,
            interval=0.5,
            what=lambda: f"the job to run at its ETA\n{worker.tail()}",
        )
        wait_until(
            lambda: holds_nothing(private_redis.url, ["default"]),
            timeout=10,
            what="the broker to hold nothing more",
        )
    finally:
        worker.stop()
    assert _executions(marker) == 1
    assert _effects(marker) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.processes
def test_jobs_of_a_worker_killed_outright_run_on_another_within_about_a_minute_none_twice(
    database_url, private_redis, marker
):
    # The victim holds one job running, one reserved behind it (prefetch 2 for one process) and
    # one waiting for its countdown, then its whole process group is SIGKILLed. The survivor,
    # started at once, restores them in its event loop once the victim's last heartbeat is a
    # visibility timeout old: 45-65 s after the kill with the defaults.
    env = platform_env(database_url=database_url, redis_url=private_redis.url)
    victim = start_worker({**env, "CELERY_WORKER_PREFETCH_MULTIPLIER": "2"}, name="victim", concurrency=1)
    client = broker_client(private_redis.url)
    jobs = {
        "countdown": client.send_task(
            "probe.effect", kwargs={"marker": f"{marker}-countdown"}, queue="default", countdown=20
        ),
        "running": client.send_task(
            "probe.effect", kwargs={"marker": f"{marker}-running", "sleep": 15}, queue="default"
        ),
        "reserved": client.send_task(
            "probe.effect", kwargs={"marker": f"{marker}-reserved"}, queue="default"
        ),
    }
    survivor = None
    try:
        wait_until(
            lambda: (
                {job.id for job in jobs.values()} <= held_task_ids(private_redis.url)
                and _executions(f"{marker}-running")
            ),
            timeout=30,
            what=lambda: f"the victim to hold all three, one running\n{victim.tail()}",
        )
        assert _executions(f"{marker}-reserved") == _executions(f"{marker}-countdown") == 0
        victim.kill()  # the whole process group: main process and pool child
        victim.proc.wait(10)
        killed_at = datetime.now(UTC)
        survivor = start_worker(env, name="survivor", concurrency=2)
        wait_until(
            lambda: all(_effects(f"{marker}-{kind}") for kind in jobs),
            timeout=TIMEOUT + SWEEP + 60,
            interval=0.5,
            what=lambda: f"the three jobs to finish on the survivor\n{survivor.tail()}",
        )
    finally:
        victim.stop()
        if survivor:
            survivor.stop()
    back_after = {
        kind: (ProbeExecution.objects.filter(marker=f"{marker}-{kind}").latest("pk").started_at - killed_at)
        for kind in jobs
    }
    seconds = {kind: round(delta.total_seconds(), 1) for kind, delta in back_after.items()}
    print(f"\nheld jobs of a SIGKILLed worker ran again after (s): {seconds}")
    assert all(TIMEOUT - HEARTBEAT - 5 <= s <= TIMEOUT + SWEEP + 15 for s in seconds.values()), seconds
    assert {kind: _effects(f"{marker}-{kind}") for kind in jobs} == {kind: 1 for kind in jobs}
    # The running one ran again (it was killed mid-run); the other two ran once, on the survivor.
    assert _executions(f"{marker}-running") == 2
    assert _executions(f"{marker}-reserved") == _executions(f"{marker}-countdown") == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.processes
def test_a_worker_shutting_down_warm_keeps_its_long_job_to_itself(database_url, private_redis, marker):
    # SIGTERM (systemd stop, a deploy): the worker finishes what it runs, however long, and keeps
    # vouching for it meanwhile, so the worker beside it never gets a copy.
    env = platform_env(database_url=database_url, redis_url=private_redis.url)
    leaving = start_worker(env, name="leaving", concurrency=1)
    staying = None
    try:
        broker_client(private_redis.url).send_task(
            "probe.effect", kwargs={"marker": marker, "sleep": OUTLIVES_TIMEOUT}, queue="default"
        )
        wait_until(lambda: _executions(marker), timeout=30, what="the job to start")
        staying = start_worker(env, name="staying", concurrency=1)
        leaving.proc.send_signal(signal.SIGTERM)  # warm shutdown: the main process only
        wait_until(
            lambda: _effects(marker),
            timeout=OUTLIVES_TIMEOUT + 30,
            interval=0.5,
            what=lambda: f"the long job to finish\n{leaving.tail()}",
        )
        wait_until(lambda: leaving.proc.poll() is not None, timeout=30, what="the leaving worker to exit")
        wait_until(
            lambda: holds_nothing(private_redis.url, ["default"]),
            timeout=10,
            what="the broker to hold nothing more",
        )
    finally:
        leaving.stop()
        if staying:
            staying.stop()
    assert _executions(marker) == 1
    assert _effects(marker) == 1
