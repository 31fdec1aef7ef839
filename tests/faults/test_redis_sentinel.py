"""Issue 21 item 3: Redis behind Sentinel, its master SIGKILLed mid-run.

A real set on loopback ports (one master, one replica, three Sentinels, every one a `redis-server`),
with the Sentinel timing docs/brokers.md tells an operator to set (the master judged down after
5 s); REDIS_URL and CELERY_BROKER_URL both name the Sentinels. Two prefork workers and beat run
while app code publishes a steady stream of jobs, half plain `.delay()`, half durable (the outbox).
The master is SIGKILLed mid-stream; the replica is promoted, and everything goes on against it
without a restart: every job accepted runs once (its effect once), the cache answers, a shared
rate-limit slot (the locks in REDIS_URL) is taken on the new master, beat keeps firing, and the
pause the failover causes is measured. Production timing throughout (visibility timeout, sweep,
relay grace, beat's every-minute `relay-outbox`)."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from jobs.models import OutboxMessage
from jobs.queues import QUEUE_NAMES
from jobs.schedules.sync import declared_defaults, sync_default
from tests.support import redis_broker
from tests.support.probe.models import ProbeEffect, ProbeExecution
from tests.support.processes import (
    DJANGO_PRELUDE,
    ManagedProcess,
    platform_env,
    run_django,
    start_beat,
    start_worker,
    wait_until,
)
from tests.support.redis_sentinel import SentinelSet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes, pytest.mark.timeout(900)]

JOBS = 600  # one every PACE seconds: about 40 s of publishing, the failover inside it
PACE = 0.05
KILL_AFTER_EFFECTS = 120
BEAT_EVERY_SECONDS = 2
VISIBILITY_TIMEOUT = settings.CELERY_BROKER_VISIBILITY_TIMEOUT
SWEEP = settings.CELERY_BROKER_TRANSPORT_OPTIONS["unacked_restore_interval"]
# A durable job whose publish failed waits for the relay: beat's every-minute relay-outbox picks it
# up once it is OUTBOX_PUBLISH_GRACE_SECONDS old.
RELAY_BOUND = 60 + settings.OUTBOX_PUBLISH_GRACE_SECONDS

PUBLISHER = (
    DJANGO_PRELUDE
    + """
import json, time
from django.db import transaction
from jobs.outbox import enqueue_durably
from tests.support.probe.tasks import effect

marker, jobs, pace = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
for i in range(jobs):
    durable = i % 2 == 1
    name = f"{marker}-{'durable' if durable else 'plain'}-{i}"
    at = time.time()
    try:
        if durable:  # accepted once committed; the outbox publishes it
            with transaction.atomic():
                enqueue_durably("probe.effect", marker=name, sleep=0.02)
        else:  # accepted once .delay() returns; an error tells the caller it was not
            effect.delay(marker=name, sleep=0.02)
        outcome = "accepted"
    except Exception as exc:
        outcome = type(exc).__name__
    print(json.dumps({"marker": name, "at": at, "outcome": outcome}), flush=True)
    time.sleep(pace)
print("published all", flush=True)
"""
)


def _published(publisher: ManagedProcess) -> list[dict]:
    return [json.loads(line) for line in list(publisher.output) if line.startswith("{")]


def _effects_by_marker(prefix: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for marker in ProbeEffect.objects.filter(marker__startswith=prefix).values_list("marker", flat=True):
        counts[marker] = counts.get(marker, 0) + 1
    return counts


def _moment(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def test_sentinel_failover_mid_run_loses_no_job_and_runs_none_twice(database_url, marker, fault_figures):
    sentinels = SentinelSet().start()
    env = platform_env(database_url=database_url, redis_url=sentinels.url, **sentinels.env())
    every, _ = IntervalSchedule.objects.get_or_create(
        every=BEAT_EVERY_SECONDS, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.create(
        name=f"sentinel-{marker}",
        task="probe.beat_tick",
        kwargs=json.dumps({"marker": f"{marker}-beat"}),
        interval=every,
    )
    sync_default(next(d for d in declared_defaults() if d.name == "relay-outbox"))  # as in production
    processes: list[ManagedProcess] = []
    try:
        processes += [start_worker(env, name=f"sentinel-{i}", concurrency=2) for i in range(2)]
        beat = start_beat(env, name="beat")
        processes.append(beat)
        wait_until(lambda: ProbeExecution.objects.filter(marker=f"{marker}-beat").exists(), timeout=60)

        publisher = ManagedProcess(
            [sys.executable, "-c", PUBLISHER, f"{marker}-job", str(JOBS), str(PACE)], env, "publisher"
        )
        processes.append(publisher)
        wait_until(
            lambda: (
                ProbeEffect.objects.filter(marker__startswith=f"{marker}-job").count() >= KILL_AFTER_EFFECTS
            ),
            timeout=120,
            what=lambda: f"jobs to run before the kill\n{publisher.tail()}\n{processes[0].tail()}",
        )
        sentinels.kill_master()
        killed_at = time.time()
        wait_until(sentinels.promoted, timeout=120, interval=0.1, what="the Sentinels to promote the replica")
        promoted_at = time.time()

        wait_until(lambda: publisher.saw("published all"), timeout=300, what=publisher.tail)
        published = _published(publisher)
        accepted = {row["marker"] for row in published if row["outcome"] == "accepted"}
        refused = {row["marker"]: row["outcome"] for row in published if row["outcome"] != "accepted"}
        wait_until(
            lambda: accepted <= set(_effects_by_marker(f"{marker}-job")),
            timeout=VISIBILITY_TIMEOUT + SWEEP + RELAY_BOUND + 120,
            interval=1,
            what=lambda: (
                f"{len(accepted - set(_effects_by_marker(f'{marker}-job')))} accepted jobs to run\n"
                + "\n".join(p.tail(15) for p in processes)
            ),
        )
        new_master = f"redis://127.0.0.1:{sentinels.replica_port}/0"
        wait_until(
            lambda: redis_broker.holds_nothing(new_master, list(QUEUE_NAMES)), timeout=VISIBILITY_TIMEOUT + 30
        )

        # The cache and a shared rate-limit slot, through REDIS_URL's Sentinels, on the new master.
        after = run_django(
            "from django.core.cache import cache\nfrom integrations.ratelimit import acquire\n"
            f"cache.set('sentinel-{marker}', 'after the failover', timeout=60)\n"
            f"print(cache.get('sentinel-{marker}'))\n"
            "acquire('fx')\n",
            env,
        )
        assert after.returncode == 0, after.stderr[-2000:]
        assert after.stdout.strip() == "after the failover"
        assert "Redis unreachable" not in after.stderr, after.stderr[
            -2000:
        ]  # the shared window, not the fallback
        assert sentinels.client(sentinels.replica_port).zcard("ratelimit:fx") >= 1

        beat_runs_after = ProbeExecution.objects.filter(
            marker=f"{marker}-beat", started_at__gt=_moment(promoted_at)
        )
        wait_until(lambda: beat_runs_after.count() >= 3, timeout=30, what=beat.tail)
        for process in processes[:3]:
            assert process.proc.poll() is None, f"{process.name} kept running, no restart\n{process.tail()}"
    finally:
        for process in processes:
            process.stop()
        sentinels.stop()

    effects = _effects_by_marker(f"{marker}-job")
    lost = sorted(accepted - set(effects))
    doubled = {name: count for name, count in effects.items() if count > 1}
    executions = ProbeExecution.objects.filter(marker__startswith=f"{marker}-job")
    reruns = executions.count() - len(effects)
    # The pause: from the SIGKILL to the first job that started after it and finished.
    first_after = (
        executions.filter(started_at__gt=_moment(killed_at), finished_at__isnull=False)
        .order_by("finished_at")
        .first()
    )
    pause = (first_after.finished_at - _moment(killed_at)).total_seconds()
    failover = promoted_at - killed_at
    refused_ran = sum(1 for name in refused if name in effects)
    # Durable jobs whose publish after commit failed in the gap: the relay (beat) published them.
    held = OutboxMessage.objects.filter(
        kwargs__marker__startswith=f"{marker}-job-durable", publish_attempts__gt=1
    ).count()
    beat_runs = list(ProbeExecution.objects.filter(marker=f"{marker}-beat").values_list("job_id", flat=True))
    print(
        f"\nSentinel failover: promoted {failover:.1f} s after the SIGKILL; jobs ran again from "
        f"{pause:.1f} s after it; {len(refused)} plain .delay() refused meanwhile ({refused_ran} of them "
        f"ran anyway); {held} durable jobs held by the outbox and relayed; {reruns} re-runs"
    )
    fault_figures(
        submitted=len(accepted),
        faults=1,
        effects=sum(effects.values()),
        lost=len(lost),
        duplicated=sum(count - 1 for count in doubled.values()),
        note=f"Redis Sentinel, master SIGKILLed mid-stream: replica promoted after {failover:.1f} s, jobs "
        f"completing again {pause:.1f} s after the kill; {len(refused)} plain .delay() calls refused "
        f"(an error to the caller) during the failover, {refused_ran} of which ran anyway, once; "
        f"{held} durable jobs held by the outbox, published by beat's relay-outbox; "
        f"{reruns} jobs a worker held ran again, each effect once",
    )
    # The kill hit the stream: publishes failed in the gap, and went on after it.
    assert refused and held, (len(refused), held)
    assert any(row["at"] > promoted_at for row in published if row["marker"] in accepted), (
        "the stream outlived it"
    )
    assert not lost, f"{len(lost)} accepted jobs never ran: {lost[:10]}"
    assert not doubled, f"effects done twice: {doubled}"
    assert all(row["outcome"] == "accepted" for row in published if "-durable-" in row["marker"])
    assert len(set(beat_runs)) == len(beat_runs)
