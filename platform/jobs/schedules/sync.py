"""Sync the declared default schedules into django-celery-beat without trampling operators' edits.

For each declared default:
- missing in the database          -> created;
- equal to the declaration         -> unchanged;
- equal to the default last applied -> updated to the new declaration (nobody edited it);
- anything else                    -> kept-edited: an operator changed it, and their edit wins;
- named in `reset`                 -> reset: the declaration is applied on purpose.

A row is always updated in place, never deleted and recreated, so its last run, run count and
id (and the audit trail pointing at it) survive. Every write is recorded in the schedule audit.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from jobs.schedules.audit import diff, fingerprint, record_change, snapshot
from jobs.schedules.declarations import DefaultSchedule
from jobs.schedules.models import AppliedDefault, ScheduleChange

ACTOR = "sync_schedules"

CREATED, UPDATED, RESET = "created", "updated", "reset"
UNCHANGED, KEPT_EDITED = "unchanged", "kept-edited"


@dataclass(frozen=True)
class SyncOutcome:
    name: str
    outcome: str
    # {field: [database value, declared value]}: what was written, or (kept-edited) what the
    # operator's edit differs in.
    changes: dict[str, list] = field(default_factory=dict)


def _desired_crontab(default: DefaultSchedule) -> CrontabSchedule:
    """The declared crontab as an (unsaved, unless one already exists) CrontabSchedule row."""
    when = default.when
    spec = dict(
        minute=when.minute,
        hour=when.hour,
        day_of_week=when.day_of_week,
        day_of_month=when.day_of_month,
        month_of_year=when.month_of_year,
        timezone=settings.TIME_ZONE,
    )
    return CrontabSchedule.objects.filter(**spec).order_by("id").first() or CrontabSchedule(**spec)


def _apply(task: PeriodicTask, default: DefaultSchedule) -> None:
    """Set the declared fields on `task` (in memory)."""
    task.task = default.task
    task.crontab = _desired_crontab(default)
    task.interval = task.solar = task.clocked = None
    task.args = "[]"
    task.kwargs = json.dumps(default.kwargs, sort_keys=True)
    task.enabled = True
    task.queue = None  # routed by task name (platform/jobs/queues.py), like any other call
    task.expire_seconds = default.expire_seconds
    task.expires = None
    task.one_off = False
    task.description = default.description


def _save(task: PeriodicTask) -> None:
    # A shared crontab row is never edited here: the task points at a row with the declared
    # fields, created if none exists yet.
    if task.crontab is not None and task.crontab.pk is None:
        task.crontab.save()
    task.save()


def sync_default(default: DefaultSchedule, *, reset: bool = False, actor: str = ACTOR) -> SyncOutcome:
    """Sync one declared default (see the module docstring for what happens when)."""
    with transaction.atomic():
        task = PeriodicTask.objects.select_for_update().filter(name=default.name).first()
        desired = PeriodicTask(name=default.name)
        _apply(desired, default)
        desired_values = snapshot(desired)
        desired_print = fingerprint(desired_values)
        applied = AppliedDefault.objects.select_for_update().filter(name=default.name).first()

        if task is None:
            _save(desired)
            outcome = SyncOutcome(default.name, CREATED, diff(None, desired_values))
            record_change(
                task=desired,
                schedule_name=default.name,
                before=None,
                after=snapshot(desired),
                actor=actor,
                source=ScheduleChange.Source.SYNC,
                action=ScheduleChange.Action.CREATED,
            )
        else:
            before = snapshot(task)
            current_print = fingerprint(before)
            if current_print == desired_print:
                outcome = SyncOutcome(default.name, UNCHANGED)
            elif reset or (applied is not None and current_print == applied.fingerprint):
                _apply(task, default)
                _save(task)
                after = snapshot(task)
                outcome = SyncOutcome(default.name, RESET if reset else UPDATED, diff(before, after))
                record_change(
                    task=task,
                    schedule_name=default.name,
                    before=before,
                    after=after,
                    actor=actor,
                    source=ScheduleChange.Source.SYNC,
                    action=ScheduleChange.Action.RESET if reset else ScheduleChange.Action.UPDATED,
                )
            else:
                # Edited by an operator (or created by hand before any sync): theirs wins.
                return SyncOutcome(default.name, KEPT_EDITED, diff(before, desired_values))

        AppliedDefault.objects.update_or_create(name=default.name, defaults={"fingerprint": desired_print})
        return outcome


def sync_schedules(
    *,
    reset: Collection[str] = (),
    actor: str = ACTOR,
    defaults: Iterable[DefaultSchedule] | None = None,
) -> list[SyncOutcome]:
    """Sync every declared default; `reset` names defaults to restore even if edited."""
    defaults = list(declared_defaults() if defaults is None else defaults)
    declared = {d.name for d in defaults}
    unknown = sorted(set(reset) - declared)
    if unknown:
        raise ValueError(
            f"reset: no default schedule named {', '.join(map(repr, unknown))}; "
            f"declared: {', '.join(sorted(declared))}"
        )
    return [sync_default(d, reset=d.name in reset, actor=actor) for d in defaults]


def undeclared_defaults(defaults: Iterable[DefaultSchedule] | None = None) -> list[str]:
    """Schedules once applied as defaults but no longer declared (left in place, never deleted)."""
    declared = {d.name for d in (declared_defaults() if defaults is None else defaults)}
    return sorted(
        name
        for name in AppliedDefault.objects.values_list("name", flat=True)
        if name not in declared and PeriodicTask.objects.filter(name=name).exists()
    )


def declared_defaults() -> tuple[DefaultSchedule, ...]:
    """The platform's default schedules, named by settings.SCHEDULE_DEFAULTS (a dotted path, so
    the machinery never imports the declarations, which name domain tasks)."""
    return tuple(import_string(settings.SCHEDULE_DEFAULTS))
