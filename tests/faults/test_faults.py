"""Faults injected into real processes: killed workers, a broker that restarts empty, dropped
database connections, a process that dies between commit and publish, poison messages.
Every effect must happen exactly once: none lost, none doubled."""

from __future__ import annotations

import itertools
import json
import sys
import time

import pytest
from django.db import connection
from kombu import Connection

from jobs.models import DeadLetter, OutboxMessage
from tests.conftest import broker_client
from tests.support.probe.models import ProbeEffect, ProbeExecution
from tests.support.processes import (
    DJANGO_PRELUDE,
    ManagedProcess,
    platform_env,
    run_django,
    start_worker,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]


def _effects(prefix: str) -> tuple[int, int]:
    """(distinct markers with an effect, total effect rows) for markers starting with prefix."""
    rows = ProbeEffect.objects.filter(marker__startswith=prefix)
    return rows.values("marker").distinct().count(), rows.count()


RELAY_LOOP = (
    "import json, time\nfrom jobs.outbox import relay_outbox\n"
    "while True:\n"
    "    print(json.dumps(relay_outbox()), flush=True)\n"
    "    time.sleep(1)\n"
)


def _start_relay(env: dict) -> ManagedProcess:
    """The outbox relay, sweeping every second (beat runs it on a schedule in production)."""
    script = DJANGO_PRELUDE + RELAY_LOOP
    return ManagedProcess([sys.executable, "-c", script], env, "relay")


def _relayed(relay: ManagedProcess, kind: str) -> int:
    return sum(json.loads(line)[kind] for line in list(relay.output) if line.startswith("{"))


def _enqueue_durably(env: dict, marker: str, jobs: int, sleep: float) -> None:
    enqueued = run_django(
        "from django.db import transaction\nfrom jobs.outbox import enqueue_durably\n"
        f"for i in range({jobs}):\n"
        "    with transaction.atomic():\n"
        f"        enqueue_durably('probe.effect', marker=f'{marker}-{{i}}', sleep={sleep})\n",
        env,
    )
    assert enqueued.returncode == 0, enqueued.stderr[-2000:]


def test_sigkill_workers_repeatedly_while_1000_jobs_run(database_url, private_redis, marker, fault_figures):
    # Redis' transport takes a message off the queue (BRPOP) before it records it as
    # unacknowledged: a worker killed in between loses it (celery/celery#7950). acks_late and
    # the visibility timeout bring back everything else; the outbox relay brings back those.
    jobs = 1000
    env = platform_env(
        database_url=database_url,
        redis_url=private_redis.url,
        CELERY_BROKER_VISIBILITY_TIMEOUT="2",
        OUTBOX_REPUBLISH_AFTER_SECONDS="5",
    )
    _enqueue_durably(env, marker, jobs, sleep=0.01)
    relay = _start_relay(env)
    workers = [start_worker(env, name=f"victim{i}", concurrency=2) for i in range(2)]
    kills = 0
    try:
        for slot in itertools.cycle(range(len(workers))):
            done, _ = _effects(marker)
            if done >= jobs or kills >= 6:
                break
            time.sleep(1.0)
            workers[slot].kill()  # SIGKILL to the whole worker: main process and children
            workers[slot].proc.wait(10)
            kills += 1
            workers[slot] = start_worker(env, name=f"victim{slot}-{kills}", concurrency=2)
        wait_until(
            lambda: _effects(marker)[0] >= jobs,
            timeout=120,
            interval=0.5,
            what=f"all {jobs} effects; have {_effects(marker)}",
        )
    finally:
        for worker in workers:
            worker.stop()
        relay.stop()
    distinct, total = _effects(marker)
    executions = ProbeExecution.objects.filter(marker__startswith=marker).count()
    fault_figures(
        submitted=jobs,
        faults=kills,
        effects=total,
        lost=jobs - distinct,
        duplicated=total - distinct,
        note=f"{executions - jobs} re-executions of killed jobs; "
        f"{_relayed(relay, 'republished')} republished by the relay",
    )
    assert kills >= 3
    assert distinct == jobs and total == jobs


def test_broker_restarted_without_persistence_mid_run(database_url, private_redis, marker, fault_figures):
    jobs = 300
    env = platform_env(
        database_url=database_url, redis_url=private_redis.url, OUTBOX_REPUBLISH_AFTER_SECONDS="3"
    )
    _enqueue_durably(env, marker, jobs, sleep=0.02)
    worker = start_worker(env, name="through-restart", concurrency=2)
    relay = None
    try:
        wait_until(lambda: _effects(marker)[0] >= 20, timeout=60, what="the run to be under way")
        private_redis.restart()  # empty: every queued job is gone
        lost_in_broker = jobs - _effects(marker)[0]
        relay = _start_relay(env)
        wait_until(
            lambda: _effects(marker)[0] >= jobs,
            timeout=120,
            interval=0.5,
            what=lambda: f"all effects; have {_effects(marker)}\n{worker.tail(80)}",
        )
        wait_until(
            lambda: not OutboxMessage.objects.filter(completed_at__isnull=True).exists(),
            timeout=30,
            what="every outbox message completed",
        )
    finally:
        worker.stop()
        if relay:
            relay.stop()
    distinct, total = _effects(marker)
    fault_figures(
        submitted=jobs,
        faults=1,
        effects=total,
        lost=jobs - distinct,
        duplicated=total - distinct,
        note=f"about {lost_in_broker} jobs were in the broker when it restarted empty",
    )
    assert lost_in_broker > 0
    assert distinct == jobs and total == jobs


def test_workers_database_connections_terminated_mid_run(database_url, private_redis, marker, fault_figures):
    jobs = 300
    env = platform_env(database_url=database_url, redis_url=private_redis.url)
    worker = start_worker(env, name="db-victim", concurrency=2)
    client = broker_client(private_redis.url)
    for i in range(jobs):
        client.send_task("probe.effect", kwargs={"marker": f"{marker}-{i}", "sleep": 0.02}, queue="default")
    terminated = 0
    try:
        for _ in range(4):
            time.sleep(0.7)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                terminated += cursor.fetchone()[0]
        wait_until(
            lambda: _effects(marker)[0] >= jobs,
            timeout=120,
            interval=0.5,
            what=lambda: f"all effects; have {_effects(marker)}\n{worker.tail(80)}",
        )
    finally:
        worker.stop()
    distinct, total = _effects(marker)
    fault_figures(
        submitted=jobs,
        faults=terminated,
        effects=total,
        lost=jobs - distinct,
        duplicated=total - distinct,
        note="connections terminated with pg_terminate_backend",
    )
    assert connection.vendor == "postgresql" and terminated > 0
    assert distinct == jobs and total == jobs
    assert not DeadLetter.objects.filter(kwargs__marker__startswith=marker).exists()


def test_process_killed_between_commit_and_publish(database_url, private_redis, marker, fault_figures):
    jobs = 20
    env = platform_env(
        database_url=database_url, redis_url=private_redis.url, OUTBOX_PUBLISH_GRACE_SECONDS="0"
    )
    for i in range(jobs):
        died = run_django(
            "import os\nfrom django.db import transaction\nfrom jobs.outbox import enqueue_durably\n"
            "with transaction.atomic():\n"
            "    transaction.on_commit(lambda: os._exit(9))\n"
            f"    enqueue_durably('probe.effect', marker='{marker}-{i}')\n",
            env,
        )
        assert died.returncode == 9
    assert OutboxMessage.objects.filter(published_at__isnull=True).count() == jobs
    worker = start_worker(env, name="after-crash", concurrency=2)
    try:
        relayed = run_django("from jobs.outbox import relay_outbox; print(relay_outbox())", env)
        assert relayed.returncode == 0, relayed.stderr[-2000:]
        wait_until(lambda: _effects(marker)[0] >= jobs, timeout=60, what=f"all effects\n{worker.tail()}")
    finally:
        worker.stop()
    distinct, total = _effects(marker)
    fault_figures(
        submitted=jobs,
        faults=jobs,
        effects=total,
        lost=jobs - distinct,
        duplicated=total - distinct,
        note="each enqueuing process died right after COMMIT, before publishing",
    )
    assert distinct == jobs and total == jobs


def test_twilio_answers_503_then_hangs_for_30_seconds(
    database_url, private_redis, fake_twilio, fault_figures
):
    # 10 s of 503s, then 20 s of requests held unanswered (our read timeout cuts them), then
    # Twilio recovers. The retry budget (5 retries, 1-2 s doubling to 16-32 s) outlasts it.
    messages = 20
    env = platform_env(
        database_url=database_url,
        redis_url=private_redis.url,
        **fake_twilio.settings(),
        INTEGRATION_CONNECT_TIMEOUT="1",
        INTEGRATION_READ_TIMEOUT="2",
        RATE_LIMITS="twilio=50/s",
    )
    recipients = [f"+1416555{n:04d}" for n in range(messages)]
    fake_twilio.outage(seconds=10, status=503)
    fake_twilio.outage(seconds=20, start_in=10)
    worker = start_worker(env, name="twilio-outage", queues="notifications", concurrency=4)
    client = broker_client(private_redis.url)
    try:
        for to in recipients:
            client.send_task(
                "tasks.notifications.send_whatsapp_message",
                kwargs={"to": to, "body": "Your vehicle has left the port."},
                queue="notifications",
            )
        wait_until(
            lambda: len(fake_twilio.messages) >= messages,
            timeout=150,
            interval=0.5,
            what=lambda: f"{messages} messages; have {len(fake_twilio.messages)}\n{worker.tail(60)}",
        )
    finally:
        worker.stop()
    received = [m["to"].removeprefix("whatsapp:") for m in fake_twilio.messages.values()]
    failed_calls = len(fake_twilio.requests) - messages
    fault_figures(
        submitted=messages,
        faults=failed_calls,
        effects=len(received),
        lost=len(set(recipients) - set(received)),
        duplicated=len(received) - len(set(received)),
        note=f"{failed_calls} calls refused (503) or hung during the outage; no dead letters",
    )
    assert sorted(received) == sorted(recipients)
    assert not DeadLetter.objects.exists()
    assert failed_calls >= messages  # every job met the outage at least once


def test_poison_messages_become_dead_letters_and_the_queue_keeps_flowing(
    database_url, private_redis, marker, fault_figures
):
    env = platform_env(database_url=database_url, redis_url=private_redis.url)
    worker = start_worker(env, name="poisoned", concurrency=1)
    client = broker_client(private_redis.url)
    try:
        with Connection(private_redis.url) as conn:
            producer = conn.Producer(serializer="json")
            # Broken JSON that claims to be JSON, with otherwise plausible task headers.
            producer.publish(
                b'{"not": json',
                routing_key="default",
                content_type="application/json",
                content_encoding="utf-8",
                headers={"id": f"{marker}-undecodable", "task": "probe.effect"},
            )
        client.send_task(
            "probe.no_such_task", kwargs={"marker": marker}, queue="default", task_id=f"{marker}-unknown"
        )
        client.send_task(
            "probe.effect", kwargs={"wrong_argument": 1}, queue="default", task_id=f"{marker}-wrong-args"
        )
        client.send_task("probe.effect", kwargs={"marker": f"{marker}-after"}, queue="default")
        wait_until(
            lambda: _effects(f"{marker}-after")[0] == 1,
            timeout=30,
            what=f"the healthy job after the poison\n{worker.tail()}",
        )
        letters = wait_until(
            lambda: (lambda found: found if len(found) == 3 else None)(
                {d.task_id: d for d in DeadLetter.objects.filter(task_id__startswith=marker)}
            ),
            timeout=30,
            what="three dead letters",
        )
    finally:
        worker.stop()
    assert letters[f"{marker}-undecodable"].exception_type == "jobs.poison.UndecodableMessage"
    assert letters[f"{marker}-unknown"].exception_type == "jobs.poison.UnknownTask"
    # Arguments the task's signature refuses: named, field by field, before its body runs.
    assert letters[f"{marker}-wrong-args"].exception_type == "jobs.errors.InvalidArgument"
    assert letters[f"{marker}-wrong-args"].exception_message == (
        "marker: is required; wrong_argument: unknown argument"
    )
    fault_figures(
        submitted=4,
        faults=3,
        effects=1,
        lost=0,
        duplicated=0,
        note="3 poison messages -> 3 dead letters; the healthy job after them ran",
    )
