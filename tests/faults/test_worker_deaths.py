"""Workers die, on both brokers, and no plain `.delay()`ed job is lost or runs its effect twice:
SIGKILLs of the whole process group, systemd-style stops (SIGTERM, then SIGKILL after the stop
timeout), a worker frozen past the visibility timeout, Redis itself SIGKILLed and restarted from
its append-only file, and an upgrade from kombu's stock layout. Production timing settings
throughout (visibility timeout, heartbeat, sweep); where a test shortens the systemd stop timeout
to reach the SIGKILL, the default's outcome is shown by the warm stops of the same test."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sys
import time

import pytest
from django.conf import settings
from kombu import Connection

from jobs.queues import QUEUE_NAMES
from tests.conftest import broker_client
from tests.faults.conftest import FaultBroker, is_redis
from tests.support.probe.models import ProbeEffect, ProbeExecution
from tests.support.processes import (
    DJANGO_PRELUDE,
    ROOT,
    ManagedProcess,
    RedisServer,
    platform_env,
    run_django,
    start_worker,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]

VISIBILITY_TIMEOUT = settings.CELERY_BROKER_VISIBILITY_TIMEOUT
SWEEP = settings.CELERY_BROKER_TRANSPORT_OPTIONS["unacked_restore_interval"]
REDELIVERY_BOUND = VISIBILITY_TIMEOUT + SWEEP
# The worker unit's stop timeout (ops/systemd/platform-worker@.service): SIGTERM, then SIGKILL.
UNIT = (ROOT / "ops" / "systemd" / "platform-worker@.service").read_text()
STOP_TIMEOUT = int(re.search(r"^TimeoutStopSec=(\d+)", UNIT, re.M).group(1))


def _effects(prefix: str) -> tuple[int, int]:
    """(distinct markers with an effect, total effect rows) for markers starting with prefix."""
    rows = ProbeEffect.objects.filter(marker__startswith=prefix)
    return rows.values("marker").distinct().count(), rows.count()


def _executions(prefix: str) -> int:
    return ProbeExecution.objects.filter(marker__startswith=prefix).count()


def _delay(
    env: dict, marker: str, jobs: int, *, sleep: float, start: int = 0, countdown: int = 0, queue: str = ""
) -> None:
    """App code enqueuing with plain .delay() (or apply_async with a countdown or queue): no outbox."""
    kwargs = f"dict(marker=f'{marker}-{{i}}', sleep={sleep})"
    queue_arg = repr(queue) if queue else "None"
    call = (
        f"effect.apply_async(kwargs={kwargs}, countdown={countdown}, queue={queue_arg})"
        if countdown or queue
        else f"effect.delay(marker=f'{marker}-{{i}}', sleep={sleep})"
    )
    code = f"from tests.support.probe.tasks import effect\nfor i in range({start}, {start + jobs}):\n"
    ran = run_django(f"{code}    {call}\n", env)
    assert ran.returncode == 0, ran.stderr[-2000:]


def _all_done(broker: FaultBroker, marker: str, jobs: int, worker: ManagedProcess, timeout: float) -> None:
    try:
        wait_until(lambda: _effects(marker)[0] >= jobs, timeout=timeout, interval=0.5)
    except TimeoutError:
        held = len(broker.held_task_ids()) if broker.is_redis else "?"
        pytest.fail(
            f"{jobs - _effects(marker)[0]} of {jobs} jobs never ran (held in the broker: {held})\n"
            f"{worker.tail(30)}"
        )


JOBS = 2000
KILLS = 30
CRASHING = "tests.support.crashing_redis_transport"


@pytest.mark.timeout(900)
def test_plain_delay_2000_jobs_through_30_sigkills_of_the_whole_worker(
    database_url, private_redis, broker_url, marker, fault_figures
):
    # The whole process group, main process included, as a machine dies: whatever each worker
    # held (a message being taken, prefetched, running) comes back by itself, on Redis once its
    # record is a visibility timeout old. Nothing goes through the outbox. (The key-prefixed
    # Redis runs the systemd-stop scenario below, which SIGKILLs groups too.)
    fault_broker = FaultBroker("redis" if is_redis(broker_url) else "rabbitmq", broker_url)
    env = fault_broker.env(database_url=database_url, redis_url=private_redis.url)
    _delay(env, marker, JOBS, sleep=0.01)
    rng = random.Random(20)
    worker = start_worker(env, name="victim-0", concurrency=2)
    kills = 0
    try:
        while kills < KILLS:
            target = _effects(marker)[0] + 15
            wait_until(lambda t=target: _effects(marker)[0] >= t, timeout=60, what=worker.tail)
            time.sleep(rng.uniform(0, 0.2))  # a different instant of the consume path each time
            worker.kill()
            worker.proc.wait(10)
            kills += 1
            worker = start_worker(env, name=f"victim-{kills}", concurrency=2)
        _all_done(fault_broker, marker, JOBS, worker, timeout=REDELIVERY_BOUND + 240)
        if fault_broker.is_redis:
            wait_until(lambda: fault_broker.holds_nothing(list(QUEUE_NAMES)), timeout=30)
    finally:
        worker.stop()
    distinct, total = _effects(marker)
    reruns = _executions(marker) - JOBS
    fault_figures(
        submitted=JOBS,
        faults=kills,
        effects=total,
        lost=JOBS - distinct,
        duplicated=total - distinct,
        note=f"{fault_broker.kind}: plain .delay(), whole process group SIGKILLed; {reruns} jobs a killed "
        "worker held ran again, each effect once",
    )
    assert kills == KILLS
    assert (distinct, total) == (JOBS, JOBS)


STOPS = 10
STOP_JOBS = 300  # the least backlog a worker starts with (topped up before each start)
DELAYED_JOBS = 20


@pytest.mark.timeout(900)
def test_10_systemd_stops_mid_flow_lose_nothing_and_run_nothing_twice(
    database_url, private_redis, fault_broker, marker, fault_figures
):
    # Each stop as the unit does it (KillMode=mixed): SIGTERM to the main process, which finishes
    # its running jobs and gives back what it had read (prefetched, waiting on a countdown);
    # the group is SIGKILLed if it has not exited by TimeoutStopSec. Every third stop catches a
    # 30-second job with the timeout cut to 2 s, so the SIGKILL path runs too; the other stops,
    # with the unit's own timeout, show the default's outcome: a warm stop.
    env = fault_broker.env(database_url=database_url, redis_url=private_redis.url)
    submitted = 0  # backlog jobs; a stop must always find work mid-flow, however fast it drains
    long_jobs = 0
    warm_exits = 0
    worker = None
    try:
        for stop in range(1, STOPS + 1):
            if submitted - _effects(f"{marker}-b")[0] < STOP_JOBS:
                _delay(env, f"{marker}-b", STOP_JOBS, sleep=0.1, start=submitted)
                submitted += STOP_JOBS
            worker = start_worker(env, name=f"stopped-{stop}", concurrency=2)
            if stop == 1:  # once a worker has declared RabbitMQ's delay exchanges
                # On Redis held in a worker's memory until due; given back at each warm stop.
                _delay(env, f"{marker}-later", DELAYED_JOBS, sleep=0, countdown=20)
            target = _effects(marker)[0] + 20
            wait_until(lambda t=target: _effects(marker)[0] >= t, timeout=60, what=worker.tail)
            timeout = STOP_TIMEOUT
            if stop % 3 == 0:
                long_marker = f"{marker}-long-{stop}"
                _delay(env, long_marker, 1, sleep=30, queue="reports")  # not behind the backlog
                wait_until(lambda m=long_marker: _executions(m), timeout=60, what=worker.tail)
                long_jobs += 1
                timeout = 2
            started = time.monotonic()
            worker.stop(timeout=timeout)
            if time.monotonic() - started < timeout:
                warm_exits += 1
        worker = start_worker(env, name="after-stops", concurrency=2)
        total_jobs = submitted + DELAYED_JOBS + long_jobs
        _all_done(fault_broker, marker, total_jobs, worker, timeout=REDELIVERY_BOUND + 120)
    finally:
        if worker:
            worker.stop()
    distinct, total = _effects(marker)
    fault_figures(
        submitted=total_jobs,
        faults=STOPS,
        effects=total,
        lost=total_jobs - distinct,
        duplicated=total - distinct,
        note=f"{fault_broker.kind}: {warm_exits} warm stops within TimeoutStopSec={STOP_TIMEOUT}s, "
        f"{STOPS - warm_exits} SIGKILLed after a 2 s timeout with a 30 s job running",
    )
    assert warm_exits == STOPS - long_jobs  # the unit's timeout: every stop was warm
    assert (distinct, total) == (total_jobs, total_jobs)


@pytest.mark.timeout(600)
def test_a_worker_frozen_for_twice_the_visibility_timeout_then_resumed(
    database_url, private_redis, broker_url, marker, fault_figures
):
    # SIGSTOP (a stalled host, a paused VM): its jobs run elsewhere; resumed, it finishes what it
    # was running (each effect once: the ledger), acknowledges late without harm, and carries on.
    fault_broker = FaultBroker("redis" if is_redis(broker_url) else "rabbitmq", broker_url)
    env = fault_broker.env(database_url=database_url, redis_url=private_redis.url)
    frozen = start_worker(env, name="frozen", concurrency=2)
    other = None
    try:
        _delay(env, f"{marker}-long", 2, sleep=10)
        wait_until(lambda: _executions(f"{marker}-long") >= 2, timeout=60, what=frozen.tail)
        _delay(env, f"{marker}-short", 50, sleep=0.01)
        frozen.kill(signal.SIGSTOP)
        other = start_worker(env, name="other", concurrency=2)
        time.sleep(2 * VISIBILITY_TIMEOUT)  # the scenario is a freeze of this length
        frozen.kill(signal.SIGCONT)
        _all_done(fault_broker, f"{marker}-long", 2, other, timeout=REDELIVERY_BOUND)
        _all_done(fault_broker, f"{marker}-short", 50, other, timeout=60)
        # The resumed worker carries on: it takes and runs new jobs.
        frozen_ran = frozen.tail(10_000).count("probe.effect SUCCESS")
        _delay(env, f"{marker}-after", 40, sleep=0.2)
        _all_done(fault_broker, f"{marker}-after", 40, other, timeout=120)
        assert frozen.proc.poll() is None, frozen.tail()
        assert frozen.tail(10_000).count("probe.effect SUCCESS") > frozen_ran, frozen.tail()
    finally:
        frozen.kill(signal.SIGCONT)
        frozen.stop()
        if other:
            other.stop()
    distinct, total = _effects(marker)
    fault_figures(
        submitted=92,
        faults=1,
        effects=total,
        lost=92 - distinct,
        duplicated=total - distinct,
        note=f"{fault_broker.kind}: one worker SIGSTOPped for {2 * VISIBILITY_TIMEOUT}s, then resumed",
    )
    assert (distinct, total) == (92, 92)


PUBLISHER = """
import json, time
from tests.support.probe.tasks import effect
deadline = time.time() + {seconds}
i = 0
while time.time() < deadline:
    try:
        job = effect.delay(marker=f"{marker}-{{i}}", sleep=0.01)
    except Exception as exc:
        print(json.dumps({{"failed": i, "error": type(exc).__name__}}), flush=True)
    else:
        print(json.dumps({{"published": i, "at": time.time()}}), flush=True)
    i += 1
    time.sleep(0.01)
"""


@pytest.mark.timeout(600)
def test_redis_sigkilled_mid_flow_and_restarted_from_its_append_only_file(
    database_url, private_redis, marker, fault_figures
):
    # Redis as make run and production run it: appendonly yes, appendfsync everysec. Every job
    # whose publish returned more than a second before the kill runs (the fsync window, should the
    # whole host crash; a killed Redis process loses nothing the kernel already has).
    broker = RedisServer(append_only=True).start()
    env = platform_env(database_url=database_url, redis_url=private_redis.url, broker_url=broker.url)
    worker = start_worker(env, name="through-redis-crash", concurrency=2)
    publisher = ManagedProcess(
        [sys.executable, "-c", DJANGO_PRELUDE + PUBLISHER.format(seconds=12, marker=marker)], env, "publisher"
    )
    try:
        # A few seconds into the run: hundreds published, the worker draining them.
        wait_until(
            lambda: (
                sum('"published"' in line for line in list(publisher.output)) >= 400
                and _effects(marker)[0] >= 50
            ),
            timeout=60,
            what=lambda: f"{worker.tail()}\n{publisher.tail()}",
        )
        killed_at = time.time()
        broker.restart()  # SIGKILL, then start again from its append-only file
        publisher.proc.wait(60)
        lines = [json.loads(line) for line in list(publisher.output) if line.startswith("{")]
        published = {line["published"]: line["at"] for line in lines if "published" in line}
        returned_before_kill = {i for i, at in published.items() if at < killed_at}
        must_run = {i for i in returned_before_kill if published[i] < killed_at - 1}
        wanted = {f"{marker}-{i}" for i in returned_before_kill}

        def ran() -> set[str]:
            return set(ProbeEffect.objects.filter(marker__in=wanted).values_list("marker", flat=True))

        try:
            wait_until(lambda: len(ran()) >= len(wanted), timeout=REDELIVERY_BOUND + 60, interval=0.5)
        except TimeoutError:
            pass  # counted below
        done = ran()
    finally:
        publisher.kill()
        worker.stop()
        broker.stop()
    lost = sorted(i for i in must_run if f"{marker}-{i}" not in done)
    lost_in_last_second = sorted(i for i in returned_before_kill - must_run if f"{marker}-{i}" not in done)
    distinct, total = _effects(marker)
    fault_figures(
        submitted=len(returned_before_kill),
        faults=1,
        effects=total,
        lost=len(lost),
        duplicated=total - distinct,
        note=f"Redis SIGKILLed and restarted from its AOF: {len(must_run)} jobs published >1 s before the "
        f"kill, {len(returned_before_kill) - len(must_run)} in its last second ({len(lost_in_last_second)} "
        "of those lost)",
    )
    assert len(must_run) > 100
    assert lost == []
    assert distinct == total


@pytest.mark.timeout(300)
def test_jobs_queued_by_kombus_stock_layout_all_run_after_the_upgrade(
    database_url, private_redis, marker, fault_figures
):
    # A site upgrading: jobs queued by workers and app code on kombu's stock transport, one of them
    # held unacknowledged by a stock worker that died with it. Workers stop, the new ones start.
    env = platform_env(database_url=database_url, redis_url=private_redis.url)
    stock = broker_client(private_redis.url)  # kombu's own Redis transport
    assert type(stock.connection_for_write().transport).__module__ == "kombu.transport.redis"
    jobs = 100
    for i in range(jobs):
        stock.send_task("probe.effect", kwargs={"marker": f"{marker}-{i}"}, queue="default")
    stock.send_task("probe.effect", kwargs={"marker": f"{marker}-held"}, queue="held-by-stock")
    victim_env = {
        **os.environ,
        "CRASH_AT": "held",
        "VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'platform'}",
    }
    victim = ManagedProcess(
        [
            sys.executable,
            "-m",
            "tests.support.crashing_redis_transport",
            private_redis.url,
            "held-by-stock",
            "stock",
        ],
        victim_env,
        "stock-worker",
    )
    victim.proc.wait(30)
    assert victim.proc.returncode == -9
    with Connection(private_redis.url) as conn:
        assert conn.default_channel.client.hlen("unacked") == 1  # the stock worker's record
    worker = start_worker(env, name="upgraded", concurrency=2, queues="default,held-by-stock")
    try:
        _all_done(FaultBroker("redis", private_redis.url), marker, jobs + 1, worker, REDELIVERY_BOUND + 60)
    finally:
        worker.stop()
    distinct, total = _effects(marker)
    fault_figures(
        submitted=jobs + 1,
        faults=1,
        effects=total,
        lost=jobs + 1 - distinct,
        duplicated=total - distinct,
        note="queued by kombu's stock Redis transport, one held by a dead stock worker; run by the new one",
    )
    assert (distinct, total) == (jobs + 1, jobs + 1)
