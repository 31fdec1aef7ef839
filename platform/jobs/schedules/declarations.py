"""The shape of a default schedule declaration (beat_schedules/defaults.py declares the platform's)."""

from __future__ import annotations

from dataclasses import dataclass, field

# A periodic task's own fields that change what or how beat sends it, besides its schedule (the
# crontab, interval, solar or clocked row): what the schedule audit records (jobs/schedules/audit.py)
# and what beat's fingerprint of the schedules watches (jobs/schedules/scheduler.py). Not
# last_run_at / total_run_count: beat itself writes those after every send.
PERIODIC_TASK_FIELDS = (
    "name",
    "task",
    "enabled",
    "args",
    "kwargs",
    "queue",
    "exchange",
    "routing_key",
    "priority",
    "headers",
    "expires",
    "expire_seconds",
    "one_off",
    "start_time",
)


@dataclass(frozen=True)
class Cron:
    """A crontab in TIME_ZONE (crontab(5) field syntax)."""

    minute: str = "*"
    hour: str = "*"
    day_of_week: str = "*"
    day_of_month: str = "*"
    month_of_year: str = "*"


@dataclass(frozen=True)
class DefaultSchedule:
    name: str
    task: str
    when: Cron
    description: str
    kwargs: dict = field(default_factory=dict)
    # A message nobody consumed within this many seconds is dropped rather than run late
    # (a backlog of stale sweeps is worth nothing). None: never expires.
    expire_seconds: int | None = None
