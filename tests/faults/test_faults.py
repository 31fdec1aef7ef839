"""Faults injected into real processes: killed workers, a broker that restarts empty, dropped
database connections, a process that dies between commit and publish, poison messages.
Every effect must happen exactly once: none lost, none doubled."""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.db import connection
from django_celery_results.models import TaskResult
from kombu import Connection

from jobs.models import DeadLetter, OutboxMessage
from tests.conftest import broker_client
from tests.factories import make_phone
from tests.faults.conftest import is_redis
from tests.support import redis_broker
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

# Production timing settings (config/settings/base.py): a killed worker's jobs come back once its
# last heartbeat is a visibility timeout old, found by the next sweep.
VISIBILITY_TIMEOUT = settings.CELERY_BROKER_VISIBILITY_TIMEOUT
SWEEP = settings.CELERY_BROKER_TRANSPORT_OPTIONS["unacked_restore_interval"]
REDELIVERY_BOUND = VISIBILITY_TIMEOUT + SWEEP


def _env(database_url: str, private_redis, broker_url: str, **extra: str) -> dict[str, str]:
    """A worker's environment: the scenario's broker; cache and locks on the private Redis."""
    return platform_env(
        database_url=database_url, redis_url=private_redis.url, CELERY_BROKER_URL=broker_url, **extra
    )


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


# The relay republishes a durable job that neither completed nor waits anywhere this long after
# its publish: production's 900 s, shortened so the scenario ends, but kept past every redelivery
# the broker makes by itself (the last kill, plus a visibility timeout and a sweep), so what the
# relay republishes is exactly what the broker lost.
RELAY_AFTER_KILLS = 150


def test_sigkill_workers_repeatedly_while_1000_jobs_run(
    database_url, private_redis, broker_url, marker, fault_figures
):
    # Jobs a killed worker held come back by themselves (on Redis once its last heartbeat is a
    # visibility timeout old), on both brokers: the relay, running beside them, has nothing to
    # republish (it would, were the broker to lose one).
    jobs = 1000
    env = _env(database_url, private_redis, broker_url, OUTBOX_REPUBLISH_AFTER_SECONDS=str(RELAY_AFTER_KILLS))
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
            timeout=RELAY_AFTER_KILLS + REDELIVERY_BOUND,
            interval=0.5,
            what=f"all {jobs} effects; have {_effects(marker)}",
        )
    finally:
        for worker in workers:
            worker.stop()
        relay.stop()
    distinct, total = _effects(marker)
    executions = ProbeExecution.objects.filter(marker__startswith=marker).count()
    republished = _relayed(relay, "republished")
    fault_figures(
        submitted=jobs,
        faults=kills,
        effects=total,
        lost=jobs - distinct,
        duplicated=total - distinct,
        note=f"{executions - jobs} re-executions of killed jobs; {republished} lost by the broker "
        "and republished by the relay",
    )
    assert kills >= 3
    assert distinct == jobs and total == jobs
    assert republished == 0  # the broker lost none


def test_broker_restarted_without_persistence_mid_run(database_url, private_redis, marker, fault_figures):
    # Redis as the broker, restarted empty (a RabbitMQ node loss is the cluster test's).
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
            what=lambda: f"all effects; have {_effects(marker)}\n{worker.tail(300)}\nrelay:\n{relay.tail(5)}",
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


def test_workers_database_connections_terminated_mid_run(
    database_url, private_redis, broker_url, marker, fault_figures
):
    jobs = 300
    env = _env(database_url, private_redis, broker_url)
    worker = start_worker(env, name="db-victim", concurrency=2)
    client = broker_client(broker_url)
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


def test_process_killed_between_commit_and_publish(
    database_url, private_redis, broker_url, marker, fault_figures
):
    jobs = 20
    env = _env(database_url, private_redis, broker_url, OUTBOX_PUBLISH_GRACE_SECONDS="0")
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


# On RabbitMQ this is also the test of retries through the delay queues: each retry waits in the
# broker, and one that copied RabbitMQ's x-death header from the delivery before it was dropped
# as a dead-letter cycle (jobs/task_base.py, _set_by_broker).
def test_twilio_answers_503_then_hangs_for_30_seconds(
    database_url, private_redis, broker_url, fake_twilio, fault_figures
):
    # 10 s of 503s, then 20 s of requests held unanswered (our read timeout cuts them), then
    # Twilio recovers. The retry budget (5 retries, 1-2 s doubling to 16-32 s) outlasts it.
    messages = 20
    env = _env(
        database_url,
        private_redis,
        broker_url,
        **fake_twilio.settings(),
        INTEGRATION_CONNECT_TIMEOUT="1",
        INTEGRATION_READ_TIMEOUT="2",
        RATE_LIMITS="twilio=50/s",
    )
    recipients = [f"+1416555{n:04d}" for n in range(messages)]
    fake_twilio.outage(seconds=10, status=503)
    fake_twilio.outage(seconds=20, start_in=10)
    worker = start_worker(env, name="twilio-outage", queues="notifications", concurrency=4)
    client = broker_client(broker_url)
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
    database_url, private_redis, broker_url, marker, fault_figures
):
    env = _env(database_url, private_redis, broker_url)
    worker = start_worker(env, name="poisoned", concurrency=1)
    client = broker_client(broker_url)
    try:
        with Connection(broker_url) as conn:
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


# --- WhatsApp with plain .delay(): no outbox, the broker alone brings jobs back ---------------

WHATSAPP_JOBS = 400
WHATSAPP_KILLS = 5
BULK_RECIPIENTS = 200


def _publish(env: dict, code: str) -> list[str]:
    """Run app code that enqueues with plain .delay() and prints one JSON value; return it."""
    ran = run_django("import json\n" + code, env)
    assert ran.returncode == 0, ran.stderr[-2000:]
    return json.loads(ran.stdout.strip().splitlines()[-1])


def _received(fake_twilio) -> Counter:
    return Counter(m["to"].removeprefix("whatsapp:") for m in list(fake_twilio.messages.values()))


@pytest.mark.timeout(420)
def test_plain_delay_400_whatsapp_jobs_through_5_sigkills_of_the_worker(
    database_url, private_redis, broker_url, fake_twilio, fault_figures
):
    # Default settings: Twilio at 10/s, so the worker holds many jobs waiting on rate-limit
    # countdowns besides the ones running. Every job a killed worker held comes back by itself
    # (on Redis within about a minute of the kill), including one it was taking at the instant
    # of the kill: none is lost, none is sent twice.
    env = _env(database_url, private_redis, broker_url, **fake_twilio.settings())
    numbers = [make_phone(n) for n in range(1, WHATSAPP_JOBS + 1)]
    job_ids = _publish(
        env,
        "from tasks.notifications import send_whatsapp_message\n"
        f"print(json.dumps([send_whatsapp_message.delay(to=n, body='Your car has shipped.').id "
        f"for n in {numbers!r}]))",
    )
    job_of = dict(zip(numbers, job_ids, strict=True))
    worker = start_worker(env, name="wa-0", queues="notifications", concurrency=2)
    workers = [worker]
    kills = held_at_kills = 0
    try:
        while kills < WHATSAPP_KILLS:
            target = len(fake_twilio.messages) + 40
            wait_until(
                lambda t=target: len(fake_twilio.messages) >= t,
                timeout=60,
                what=lambda t=target, w=worker: f"{t} messages accepted\n{w.tail()}",
            )
            if is_redis(broker_url):
                held_at_kills += len(redis_broker.held_task_ids(broker_url))
            worker.kill()  # the whole process group: main process and pool children
            worker.proc.wait(10)
            kills += 1
            worker = start_worker(env, name=f"wa-{kills}", queues="notifications", concurrency=2)
            workers.append(worker)

        def settled() -> bool:
            if is_redis(broker_url):  # nothing left anywhere that could still run
                return redis_broker.holds_nothing(broker_url, ["notifications"])
            return set(_received(fake_twilio)) >= set(numbers)

        wait_until(
            settled,
            timeout=120,
            interval=0.5,
            what=lambda: f"every job back and done; {len(_received(fake_twilio))} received\n{worker.tail()}",
        )
    finally:
        worker.stop()
    received = _received(fake_twilio)
    missing = [n for n in numbers if n not in received]
    twice = [n for n, count in received.items() if count > 1]
    fault_figures(
        submitted=WHATSAPP_JOBS,
        faults=kills,
        effects=sum(received.values()),
        lost=len(missing),
        duplicated=len(twice),
        note=f"plain .delay(), default settings: about {held_at_kills} jobs held by killed workers came "
        f"back; missing: {[job_of[n] for n in missing]}",
    )
    assert twice == []
    assert missing == []
    assert not any(w.saw("Could not restore message") for w in workers)  # kombu drops those too


def _waiting_on_its_countdown(broker_url: str, job_id: str) -> bool:
    """The job is held by a worker, waiting for its countdown: not running, not queued."""
    if not is_redis(broker_url):
        return TaskResult.objects.filter(task_id=job_id, status="RETRY").exists()
    held = [m for m in redis_broker.held_messages(broker_url) if m["headers"].get("id") == job_id]
    eta = held[0]["headers"].get("eta") if len(held) == 1 else None
    return bool(eta) and datetime.fromisoformat(eta) > datetime.now(UTC)


@pytest.mark.timeout(300)
def test_bulk_whatsapp_to_200_killed_while_waiting_on_its_rate_limit_countdown(
    database_url, private_redis, broker_url, fake_twilio, fault_figures
):
    # The bulk job sends what Twilio's shared limit (10/s) allows, then waits on a countdown,
    # held by the worker; the whole worker is SIGKILLed then. With the old 2-hour visibility
    # timeout the job came back after 2 hours; now within about a minute, and it carries on
    # from its recipients' rows.
    env = _env(database_url, private_redis, broker_url, **fake_twilio.settings())
    recipients = [make_phone(n) for n in range(1, BULK_RECIPIENTS + 1)]
    worker = start_worker(env, name="bulk-0", queues="notifications", concurrency=2)
    try:
        job_id = _publish(
            env,
            "from tasks.notifications import send_bulk_whatsapp_notifications as bulk\n"
            f"job = bulk.delay(recipients={recipients!r}, body='The port of Douala reopens.')\n"
            "print(json.dumps(job.id))",
        )
        # It fans out to chunk jobs and waits on its countdown for them (messaging/bulk.py):
        # killed once some of them have sent.
        wait_until(
            lambda: len(fake_twilio.messages) > 0 and _waiting_on_its_countdown(broker_url, job_id),
            timeout=60,
            interval=0.01,
            what=lambda: f"the job to wait on its countdown\n{worker.tail()}",
        )
        sent_before = len(fake_twilio.messages)
        worker.kill()
        worker.proc.wait(10)
        killed_at = time.monotonic()
        worker = start_worker(env, name="bulk-1", queues="notifications", concurrency=2)
        wait_until(
            lambda: set(_received(fake_twilio)) >= set(recipients),
            timeout=120,
            interval=0.5,
            what=lambda: f"every recipient; {len(_received(fake_twilio))} so far\n{worker.tail()}",
        )
        everyone_after = time.monotonic() - killed_at
    finally:
        worker.stop()
    received = _received(fake_twilio)
    twice = [n for n, count in received.items() if count > 1]
    fault_figures(
        submitted=BULK_RECIPIENTS,
        faults=1,
        effects=sum(received.values()),
        lost=len(set(recipients) - set(received)),
        duplicated=len(twice),
        note=f"killed with {sent_before} sent, waiting on its countdown; every recipient "
        f"{everyone_after:.0f} s after the kill",
    )
    assert 0 < sent_before < BULK_RECIPIENTS
    assert twice == []
