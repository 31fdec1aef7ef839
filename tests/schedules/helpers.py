"""Helpers for the schedule tests."""

from __future__ import annotations

from django_celery_beat.models import PeriodicTask


def periodic_task_form(task: PeriodicTask, **overrides) -> dict[str, str]:
    """What admin's change form posts for `task` unchanged, with `overrides` applied."""
    audit_rows = task.audit_changes.count() if task.pk else 0
    data = {
        "name": task.name,
        "regtask": "",
        "task": task.task,
        "enabled": "on" if task.enabled else "",
        "description": task.description,
        "interval": task.interval_id or "",
        "crontab": task.crontab_id or "",
        "solar": task.solar_id or "",
        "clocked": task.clocked_id or "",
        "start_time_0": "",
        "start_time_1": "",
        "one_off": "on" if task.one_off else "",
        "args": task.args,
        "kwargs": task.kwargs,
        "expires_0": "",
        "expires_1": "",
        "expire_seconds": task.expire_seconds or "",
        "queue": task.queue or "",
        "exchange": "",
        "routing_key": "",
        "priority": "",
        "headers": task.headers or "{}",
        # The read-only audit inline still posts its management form.
        "audit_changes-TOTAL_FORMS": str(audit_rows),
        "audit_changes-INITIAL_FORMS": str(audit_rows),
        "audit_changes-MIN_NUM_FORMS": "0",
        "audit_changes-MAX_NUM_FORMS": "0",
    }
    data.update({k: ("on" if v is True else "" if v is False else str(v)) for k, v in overrides.items()})
    return {k: v for k, v in data.items() if v != ""}
