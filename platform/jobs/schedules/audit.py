"""Schedule audit: snapshot a periodic task's operator-facing fields, and record what changed."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django_celery_beat.models import PeriodicTask

from jobs.schedules.declarations import PERIODIC_TASK_FIELDS
from jobs.schedules.models import ScheduleChange

# The fields an operator edits (admin) or a default declares (beat_schedules/defaults.py).
# The schedule itself (crontab, interval, solar or clocked, and its fields) is one entry,
# "schedule", rendered as text: "crontab 30 0 * * * America/Toronto".
# Name and task first, then the schedule, as a change is shown.
AUDITED_FIELDS = (*PERIODIC_TASK_FIELDS[:2], "schedule", *PERIODIC_TASK_FIELDS[2:], "description")

# What a default declares, and so what "still equal to its default" compares.
MANAGED_FIELDS = (
    "task",
    "schedule",
    "enabled",
    "args",
    "kwargs",
    "queue",
    "expire_seconds",
    "one_off",
    "description",
)


def describe_schedule(task: PeriodicTask) -> str:
    if task.crontab_id or task.crontab:
        c = task.crontab
        return f"crontab {c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week} {c.timezone}"
    if task.interval_id or task.interval:
        return f"interval every {task.interval.every} {task.interval.period}"
    if task.solar_id or task.solar:
        s = task.solar
        return f"solar {s.event} {s.latitude} {s.longitude}"
    if task.clocked_id or task.clocked:
        return f"clocked {task.clocked.clocked_time.isoformat()}"
    return "none"


def _normal_json(text: str | None) -> Any:
    # '{"a":1}' and '{"a": 1}' are the same arguments; keep unparsable text as it is.
    try:
        return json.loads(text or "null")
    except ValueError:
        return text


def snapshot(task: PeriodicTask) -> dict[str, Any]:
    """The audited fields of `task` as JSON-ready values."""
    values: dict[str, Any] = {}
    for name in AUDITED_FIELDS:
        if name == "schedule":
            value: Any = describe_schedule(task)
        elif name in ("args", "kwargs", "headers"):
            value = _normal_json(getattr(task, name))
        else:
            value = getattr(task, name)
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        values[name] = value
    return values


def fingerprint(values: dict[str, Any]) -> str:
    """A stable hash of the managed fields of a snapshot."""
    managed = {name: values.get(name) for name in MANAGED_FIELDS}
    return hashlib.sha256(json.dumps(managed, sort_keys=True, default=str).encode()).hexdigest()


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, list]:
    """{field: [before, after]} for every field that differs."""
    before, after = before or {}, after or {}
    return {
        name: [before.get(name), after.get(name)]
        for name in AUDITED_FIELDS
        if before.get(name) != after.get(name)
    }


def record_change(
    *,
    task: PeriodicTask | None,
    schedule_name: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    actor: str,
    source: str,
    action: str,
    user: AbstractBaseUser | None = None,
) -> ScheduleChange | None:
    """Record one change; nothing when no audited field changed (a save with no edit)."""
    changes = diff(before, after)
    if not changes and action != ScheduleChange.Action.DELETED:
        return None
    return ScheduleChange.objects.create(
        periodic_task=task if task is not None and task.pk else None,
        schedule_name=schedule_name,
        actor=actor,
        user=user if user is not None and user.pk else None,
        source=source,
        action=action,
        changes=changes,
    )
