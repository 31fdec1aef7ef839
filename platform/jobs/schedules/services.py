"""Schedule services: run a periodic task now, exactly as beat would send it."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django_celery_beat.models import PeriodicTask

from jobs.celery_app import app
from jobs.schedules.models import ScheduleChange
from jobs.schedules.scheduler import PlatformModelEntry


def run_schedule_now(*, periodic_task: PeriodicTask, actor: str, user: AbstractBaseUser | None = None) -> str:
    """Send `periodic_task`'s task once, now, with its arguments and options; return the job id.

    The message is the one beat sends for this schedule (same entry class: arguments, queue
    override or route by task name, expiry, headers), so "run now" works for every schedule,
    including tasks this process has not imported, and is recorded in the schedule audit.
    """

    entry = PlatformModelEntry(periodic_task, app=app)
    options = dict(entry.options)
    options["headers"] = {**options.get("headers", {}), "run_now_by": actor}
    result = app.send_task(entry.task, args=entry.args, kwargs=entry.kwargs, **options)
    ScheduleChange.objects.create(
        periodic_task=periodic_task,
        schedule_name=periodic_task.name,
        actor=actor,
        user=user if user is not None and user.pk else None,
        source=ScheduleChange.Source.ADMIN,
        action=ScheduleChange.Action.RAN_NOW,
        changes={"job_id": result.id},
    )
    return result.id
