"""Daylight-saving days in America/Toronto: schedules fire once, at the right wall-clock time.

Drives django-celery-beat's real schedule objects (our PlatformModelEntry over PeriodicTask
rows, its crontab's real is_due) through a simulated day in 10-second steps, with the clock
given to the schedule as its `nowfun`. The right behaviour, decided here:
- a fixed time that exists once (00:30, and 02:00 on fall-back day) fires once, at that time;
- a fixed time that does not exist (02:00 on spring-forward day, clocks jump 02:00 -> 03:00)
  fires once, at 03:00, the first moment after the gap (cron does the same);
- a fixed time that happens twice (01:30 on fall-back day) fires once, in the first pass;
- a wildcard-hour schedule (every 15 minutes) keeps its real-time spacing through both
  changes: 92 runs on the 23-hour day, 100 on the 25-hour day, never 75 minutes apart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from jobs.schedules.scheduler import PlatformModelEntry
from tasks.app import app

pytestmark = pytest.mark.django_db

TORONTO = ZoneInfo("America/Toronto")
SPRING_FORWARD = (2026, 3, 8)  # 02:00 EST -> 03:00 EDT
FALL_BACK = (2026, 11, 1)  # 02:00 EDT -> 01:00 EST


def cron_task(minute: str, hour: str, day_of_month: str = "*") -> PeriodicTask:
    cron = CrontabSchedule.objects.create(
        minute=minute, hour=hour, day_of_month=day_of_month, timezone="America/Toronto"
    )
    return PeriodicTask.objects.create(
        name=f"dst {minute} {hour} {day_of_month}", task="probe.beat_tick", crontab=cron
    )


def simulate(
    task: PeriodicTask,
    day: tuple[int, int, int],
    *,
    restart_at: datetime | None = None,
    since: datetime | None = None,
    step: timedelta = timedelta(seconds=10),
) -> list[datetime]:
    """Fire times (in Toronto) from `since` (last run; default noon the day before `day`) to
    noon the day after.

    Each fire saves the entry (as beat does); at `restart_at` the entry is re-read from the
    database, as a restarted or newly elected beat would."""
    start = since or datetime(*day, 12, tzinfo=TORONTO) - timedelta(days=1)
    end = datetime(*day, 12, tzinfo=TORONTO) + timedelta(days=1)
    clock = [start.astimezone(UTC)]
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=clock[0])

    def load() -> PlatformModelEntry:
        entry = PlatformModelEntry(PeriodicTask.objects.select_related("crontab").get(pk=task.pk), app=app)
        entry.schedule.nowfun = lambda: clock[0].astimezone(TORONTO)
        return entry

    entry, fires = load(), []
    while clock[0] < end:
        if restart_at is not None and clock[0] >= restart_at:
            entry, restart_at = load(), None
        if entry.is_due().is_due:
            fires.append(clock[0].astimezone(TORONTO))
            entry = next(entry)
            entry.save()
            entry.schedule.nowfun = lambda: clock[0].astimezone(TORONTO)
        clock[0] += step
    return fires


def on(day: tuple[int, int, int], fires: list[datetime]) -> list[str]:
    return [f.isoformat() for f in fires if f.date() == datetime(*day).date()]


def test_spring_forward_daily_0200_fires_once_at_0300():
    fires = simulate(cron_task("0", "2"), SPRING_FORWARD)
    assert on(SPRING_FORWARD, fires) == ["2026-03-08T03:00:00-04:00"]
    assert len(fires) == 2  # and the next day at 02:00 again
    assert fires[-1].isoformat() == "2026-03-09T02:00:00-04:00"


def test_spring_forward_daily_0030_fires_once_at_0030():
    fires = simulate(cron_task("30", "0"), SPRING_FORWARD)
    assert on(SPRING_FORWARD, fires) == ["2026-03-08T00:30:00-05:00"]


def test_fall_back_daily_0200_fires_once_at_0200_standard_time():
    fires = simulate(cron_task("0", "2"), FALL_BACK)
    assert on(FALL_BACK, fires) == ["2026-11-01T02:00:00-05:00"]


def test_fall_back_daily_0030_fires_once_at_0030():
    fires = simulate(cron_task("30", "0"), FALL_BACK)
    assert on(FALL_BACK, fires) == ["2026-11-01T00:30:00-04:00"]


def test_fall_back_0130_fires_once_in_the_repeated_hour_even_across_a_restart():
    # Beat restarts at 01:40 in the second pass (EST) and re-reads last_run_at from the database.
    restart = datetime(2026, 11, 1, 1, 40, tzinfo=TORONTO).replace(fold=1).astimezone(UTC)
    fires = simulate(cron_task("30", "1"), FALL_BACK, restart_at=restart)
    assert on(FALL_BACK, fires) == ["2026-11-01T01:30:00-04:00"]


def test_a_run_in_the_second_pass_of_the_repeated_hour_is_not_followed_by_a_storm_of_runs():
    # The schedule was created (or beat came back) at 01:10 EST, in the second pass. Stock
    # celery computes the next 01:30 in the first pass, in the past, and fires on every tick.
    created = datetime(2026, 11, 1, 1, 10, tzinfo=TORONTO).replace(fold=1)
    fires = simulate(cron_task("30", "1"), FALL_BACK, since=created)
    assert on(FALL_BACK, fires) == ["2026-11-01T01:30:00-05:00"]


def test_monthly_cleanup_on_the_first_fires_once_when_the_first_is_fall_back_day():
    call_command("sync_schedules", stdout=open("/dev/null", "w"))
    fires = simulate(PeriodicTask.objects.get(name="cleanup-old-audit-logs"), FALL_BACK)
    assert on(FALL_BACK, fires) == ["2026-11-01T02:00:00-05:00"]


@pytest.mark.parametrize(
    "day, expected",
    [
        (SPRING_FORWARD, "2026-03-08T00:30:00-05:00"),
        (FALL_BACK, "2026-11-01T00:30:00-04:00"),
    ],
)
def test_the_synced_exchange_rates_default_fires_once_at_0030_local(settings, day, expected):
    assert settings.TIME_ZONE == "America/Toronto"
    call_command("sync_schedules", stdout=open("/dev/null", "w"))
    fires = simulate(PeriodicTask.objects.get(name="update-exchange-rates-daily"), day)
    assert on(day, fires) == [expected]


@pytest.mark.parametrize("day, runs", [(SPRING_FORWARD, 23 * 4), (FALL_BACK, 25 * 4)])
def test_every_15_minutes_keeps_real_time_spacing_through_the_change(day, runs):
    call_command("sync_schedules", stdout=open("/dev/null", "w"))
    task = PeriodicTask.objects.get(name="process-pending-payments")
    fires = simulate(task, day, step=timedelta(seconds=30))

    today = [f for f in fires if f.date() == datetime(*day).date()]
    gaps = {b.astimezone(UTC) - a.astimezone(UTC) for a, b in zip(fires, fires[1:], strict=False)}
    assert len(today) == runs
    assert gaps == {timedelta(minutes=15)}


@pytest.mark.parametrize("day", [SPRING_FORWARD, FALL_BACK])
def test_every_6_hours_fires_on_the_local_hours(day):
    call_command("sync_schedules", stdout=open("/dev/null", "w"))
    fires = simulate(PeriodicTask.objects.get(name="send-shipment-updates"), day)
    assert [f.strftime("%H:%M") for f in fires if f.date() == datetime(*day).date()] == [
        "00:00",
        "06:00",
        "12:00",
        "18:00",
    ]
