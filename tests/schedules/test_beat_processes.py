"""Real `celery -A tasks beat` processes against the real broker, database and a real worker:
two beats fire each run once, the standby takes over from a SIGKILLed leader without losing
or doubling a run, and a bulk update (no signals) reaches a running beat within seconds."""

from __future__ import annotations

import json
import signal
import time
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from jobs.operations.health import check_beat
from jobs.schedules.models import BeatLease
from tests.support.probe.models import ProbeExecution
from tests.support.processes import ManagedProcess, platform_env, start_beat, wait_until
from tests.support.tcp_forwarder import TcpForwarder

# Short, so most tests finish quickly; the takeover test also runs with production's default.
LEASE_SECONDS = 2
DEFAULT_LEASE_SECONDS = settings.BEAT_LOCK_LEASE_SECONDS
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]


@pytest.fixture
def lease() -> int:
    return LEASE_SECONDS


@pytest.fixture
def beats(database_url, live_worker, lease):
    """Start beat processes (lease `lease` seconds) that are stopped after the test."""
    BeatLease.objects.all().delete()  # a lease left by a killed test
    env = platform_env(
        database_url=database_url,
        redis_url=settings.CELERY_BROKER_URL,
        BEAT_LOCK_LEASE_SECONDS=str(lease),
    )
    started: list[ManagedProcess] = []

    def start(name: str) -> ManagedProcess:
        beat = start_beat(env, name=name)
        started.append(beat)
        wait_until(
            lambda: beat.saw("beat: Starting") or beat.proc.poll() is not None,
            timeout=60,
            what=f"{name} to start",
        )
        assert beat.proc.poll() is None, beat.tail()
        return beat

    yield start
    for beat in reversed(started):  # standbys first, so none takes over from a leader stopping
        beat.stop()
    # No beat runs any more: a later test (/healthz's) must not see one's heartbeat.
    BeatLease.objects.all().delete()


def probe_schedule(marker: str, every_seconds: int) -> PeriodicTask:
    interval, _ = IntervalSchedule.objects.get_or_create(every=every_seconds, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(
        name=f"beat-probe-{marker}",
        task="probe.beat_tick",
        interval=interval,
        kwargs=json.dumps({"marker": marker}),
    )


def runs(marker: str) -> list[ProbeExecution]:
    return list(ProbeExecution.objects.filter(marker=marker).order_by("started_at"))


def sends(beat: ManagedProcess, schedule: PeriodicTask) -> int:
    return sum(f"Sending due task {schedule.name} " in line for line in list(beat.output))


def gaps(executions: list[ProbeExecution]) -> list[float]:
    return [
        round((b.started_at - a.started_at).total_seconds(), 2)
        for a, b in zip(executions, executions[1:], strict=False)
    ]


def test_two_beats_fire_each_run_once(beats, marker):
    schedule = probe_schedule(marker, every_seconds=2)
    leader = beats("beat-a")
    wait_until(lambda: leader.saw("is now the leader"), timeout=20, what="beat-a to lead")
    standby = beats("beat-b")

    wait_until(lambda: len(runs(marker)) >= 12, timeout=60, what="12 runs")
    standby.stop()
    leader.stop()

    assert sends(standby, schedule) == 0 and not standby.saw("is now the leader"), standby.tail()
    wait_until(
        lambda: len(runs(marker)) == sends(leader, schedule), timeout=10, what="every sent run to be executed"
    )
    executed = runs(marker)
    assert len({e.job_id for e in executed}) == len(executed)
    # One run per 2-second interval: no gap short enough to be a second beat's copy (about 0 s),
    # none long enough to hide a missed run (about 4 s). Runs are timed when the worker starts
    # them, so each gap carries the difference of two runs' queue latencies, which a busy
    # machine stretches to hundreds of milliseconds: the bounds sit halfway between.
    assert all(1.0 <= gap <= 3.0 for gap in gaps(executed)), gaps(executed)
    # Runs == intervals: the first run starts the count, then one per elapsed interval (the
    # boundary run at the end may or may not have started before the beats stopped: +-1).
    elapsed = (executed[-1].started_at - executed[0].started_at).total_seconds()
    assert abs(len(executed) - (1 + elapsed / 2)) <= 1


@pytest.mark.parametrize("lease", [LEASE_SECONDS, DEFAULT_LEASE_SECONDS])
def test_standby_takes_over_from_a_killed_leader_without_losing_or_doubling_a_run(beats, marker, lease):
    every = 5  # longer than the takeover (lease 2 s + one standby tick), so a stale copy shows
    schedule = probe_schedule(marker, every_seconds=every)
    leader = beats("beat-a")
    wait_until(lambda: leader.saw("is now the leader"), timeout=20, what="beat-a to lead")
    standby = beats("beat-b")
    wait_until(lambda: len(runs(marker)) >= 2, timeout=30, what="two runs by the leader")

    # Kill the leader right after a run, when its last_run_at is the newest thing a stale
    # standby could miss.
    count = len(runs(marker))
    wait_until(lambda: len(runs(marker)) > count, timeout=every + 5, what="the next run")
    leader.kill(signal.SIGKILL)
    killed_at = time.monotonic()
    leader.proc.wait(5)
    wait_until(lambda: standby.saw("is now the leader"), timeout=lease + 10, what="the standby to take over")
    takeover = time.monotonic() - killed_at
    before_takeover = len(runs(marker))
    wait_until(
        lambda: len(runs(marker)) >= before_takeover + 3,
        timeout=4 * every + 10,
        what="three runs by the new leader",
    )
    standby.stop()

    wait_until(
        lambda: len(runs(marker)) == sends(leader, schedule) + sends(standby, schedule),
        timeout=10,
        what="every sent run to be executed",
    )
    executed = runs(marker)
    assert takeover <= lease + lease / 3 + 2, f"takeover took {takeover:.1f}s"
    assert sends(standby, schedule) >= 3
    assert len({e.job_id for e in executed}) == len(executed)
    # Across the takeover too, runs stay at least one interval apart: the new leader re-read the
    # old leader's last run (not doubled). With the short lease it also sent the next one on time
    # (not lost); with the default lease, the runs due while nobody led collapse into one, sent
    # as soon as the standby leads (late by the takeover, never twice). A stale copy would come
    # within the takeover (under 3.5 s with the short lease); runs are timed when the worker
    # starts them, so each gap also carries the difference of two runs' queue latencies (seen up
    # to 0.4 s on a busy machine): a second of slack each way.
    longest = every + 1.0 if lease < every else takeover + every + 1
    assert all(every - 1.0 <= gap <= longest for gap in gaps(executed)), gaps(executed)


def test_a_bulk_update_reaches_a_running_beat_within_seconds(beats, marker):
    schedule = probe_schedule(marker, every_seconds=2)
    beat = beats("beat-a")
    wait_until(lambda: len(runs(marker)) >= 2, timeout=30, what="two runs")

    # queryset.update(): no save() signals, so django-celery-beat alone would not notice
    # before its forced resync 5 minutes later.
    renamed = f"{marker}-v2"
    updated_at = timezone.now()
    PeriodicTask.objects.filter(pk=schedule.pk).update(kwargs=json.dumps({"marker": renamed}))
    first = wait_until(lambda: runs(renamed), timeout=15, what="a run with the new arguments")[0]
    assert first.started_at - updated_at < timedelta(seconds=6)
    assert beat.saw("schedules changed without a signal")

    PeriodicTask.objects.filter(pk=schedule.pk).update(enabled=False)
    wait_until(
        lambda: sum("changed without a signal" in line for line in beat.output) >= 2,
        timeout=10,
        what="beat to reload after the bulk disable",
    )
    stopped = len(runs(renamed))
    # An absence can only be observed over a window: three intervals with nothing sent.
    time.sleep(6)
    assert len(runs(renamed)) == stopped


def test_a_beat_that_cannot_reach_its_lease_store_says_so_every_tick_until_it_can(
    database_url, live_worker, marker
):
    """Issue 21: beat started with its database (the lease store) unreachable does not die, nor
    wait in silence: its log says "cannot act" at once and every tick (production loop, 5 s), and
    /healthz says so too (through the cache); once the database answers it leads and fires."""
    BeatLease.objects.all().delete()
    schedule = probe_schedule(marker, every_seconds=2)
    url = urlsplit(database_url)
    forwarder = TcpForwarder(url.hostname, url.port or 5432)
    through_forwarder = urlunsplit(
        url._replace(netloc=f"{url.netloc.rpartition('@')[0]}@127.0.0.1:{forwarder.port}")
    )
    beat = start_beat(
        platform_env(database_url=through_forwarder, redis_url=settings.REDIS_URL), name="beat-nodb"
    )
    try:
        started = time.monotonic()
        wait_until(
            lambda: beat.saw("beat: cannot act"),
            timeout=20,
            what=lambda: f"the first complaint\n{beat.tail()}",
        )
        first = time.monotonic() - started
        tick = min(settings.CELERY_BEAT_MAX_LOOP_INTERVAL, settings.BEAT_LOCK_LEASE_SECONDS / 3)
        wait_until(
            lambda: sum("beat: cannot act" in line for line in list(beat.output)) >= 3,
            timeout=3 * tick + 5,
            what=lambda: f"a complaint every tick\n{beat.tail()}",
        )
        assert beat.proc.poll() is None, beat.tail()
        health = check_beat()
        assert health["ok"] is False and "cannot act" in health["detail"], health
        assert not runs(marker)

        forwarder.open()
        wait_until(
            lambda: beat.saw("is now the leader"),
            timeout=3 * tick,
            what=lambda: f"beat to lead\n{beat.tail()}",
        )
        wait_until(lambda: len(runs(marker)) >= 2, timeout=20, what="runs once the database answers")
        assert beat.saw("the lease store answers again")
        wait_until(lambda: check_beat()["ok"], timeout=2 * tick, what="/healthz's beat check to pass")
    finally:
        beat.stop()
        forwarder.close()
    assert first < 15, f"the first complaint came {first:.1f}s after start"
    assert sends(beat, schedule) >= 2
