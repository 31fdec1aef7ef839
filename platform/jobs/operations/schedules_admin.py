"""Admin for schedules: django-celery-beat's periodic tasks and crontabs, audited, with "run now".

Every change made here (form saves, enable/disable/toggle actions, deletes, crontab and
interval edits) is recorded in the schedule audit with the user who made it, and the audit is
shown on the periodic task's page. "Run now" sends the task exactly as beat would.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

# Importing the app makes it Celery's current app: admin's task picker lists its tasks.
from jobs.celery_app import app as celery_app
from jobs.schedules.audit import record_change, snapshot
from jobs.schedules.models import ScheduleChange
from jobs.schedules.services import run_schedule_now


def _render_changes(change: ScheduleChange) -> str:
    if change.action == ScheduleChange.Action.RAN_NOW:
        return format_html("job {}", change.changes.get("job_id", ""))
    return format_html_join(
        "",
        "<div><b>{}</b>: {} &rarr; {}</div>",
        ((field, json.dumps(old), json.dumps(new)) for field, (old, new) in sorted(change.changes.items())),
    )


class ScheduleChangeInline(admin.TabularInline):
    """The schedule's audit trail, newest first, read-only."""

    model = ScheduleChange
    fk_name = "periodic_task"
    fields = ("changed_at", "actor", "source", "action", "what_changed")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "change"
    verbose_name_plural = "Change history (schedule audit)"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="what changed")
    def what_changed(self, change: ScheduleChange) -> str:
        return _render_changes(change)


def _actor(request) -> str:
    return request.user.get_username() or f"user {request.user.pk}"


class _AuditedEdits:
    """Records one audit row per periodic task a change touches, with the request's user."""

    def _record(self, request, task, before, action) -> None:
        after = snapshot(task) if action != ScheduleChange.Action.DELETED else None
        record_change(
            task=task if action != ScheduleChange.Action.DELETED else None,
            schedule_name=task.name,
            before=before,
            after=after,
            actor=_actor(request),
            user=request.user,
            source=ScheduleChange.Source.ADMIN,
            action=action,
        )


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class AuditedPeriodicTaskAdmin(_AuditedEdits, beat_admin.PeriodicTaskAdmin):
    inlines = (ScheduleChangeInline,)
    list_display = ("name", "enabled", "task", "scheduler", "last_run_at", "total_run_count")
    # django-celery-beat's form page with its inline script moved into a static file: the
    # Content-Security-Policy runs no inline script (config/settings/base.py).
    change_form_template = "admin/jobs/periodictask/change_form.html"

    def save_model(self, request, obj, form, change) -> None:
        before = snapshot(PeriodicTask.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        self._record(
            request, obj, before, ScheduleChange.Action.UPDATED if change else ScheduleChange.Action.CREATED
        )

    def delete_model(self, request, obj) -> None:
        self._record(request, obj, snapshot(obj), ScheduleChange.Action.DELETED)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for task in queryset:
            self._record(request, task, snapshot(task), ScheduleChange.Action.DELETED)
        super().delete_queryset(request, queryset)

    # The stock actions use queryset.update(): no signals and no audit. Save each task instead
    # (a handful of rows), so beat is told through its signal and every change is recorded.
    def _set_enabled(self, request, queryset, enabled_for) -> int:
        count = 0
        for task in queryset:
            before = snapshot(task)
            task.enabled = enabled_for(task)
            task.save()
            self._record(request, task, before, ScheduleChange.Action.UPDATED)
            count += 1
        return count

    @admin.action(description="Enable selected tasks")
    def enable_tasks(self, request, queryset) -> None:
        count = self._set_enabled(request, queryset, lambda task: True)
        self.message_user(request, f"{count} task(s) enabled.")

    @admin.action(description="Disable selected tasks")
    def disable_tasks(self, request, queryset) -> None:
        count = self._set_enabled(request, queryset, lambda task: False)
        self.message_user(request, f"{count} task(s) disabled.")

    @admin.action(description="Toggle activity of selected tasks")
    def toggle_tasks(self, request, queryset) -> None:
        count = self._set_enabled(request, queryset, lambda task: not task.enabled)
        self.message_user(request, f"{count} task(s) toggled.")

    @admin.action(description="Run selected tasks now")
    def run_tasks(self, request, queryset) -> None:
        app = celery_app
        app.loader.import_default_modules()
        sent, unknown = [], []
        for task in queryset.select_related("interval", "crontab", "solar", "clocked"):
            run_schedule_now(periodic_task=task, actor=_actor(request), user=request.user)
            sent.append(task.name)
            if task.task not in app.tasks:
                unknown.append(task.task)
        self.message_user(request, f"Sent now: {', '.join(sent)}.")
        if unknown:
            self.message_user(
                request,
                f"Not a task of this codebase (a worker will reject it): {', '.join(unknown)}.",
                level=messages.WARNING,
            )


def _tasks_using(schedule) -> list[PeriodicTask]:
    field = "crontab" if isinstance(schedule, CrontabSchedule) else "interval"
    return list(PeriodicTask.objects.filter(**{field: schedule}).select_related(field))


class _AuditedScheduleAdmin(_AuditedEdits):
    """A crontab or interval edit changes every task that uses it: audit each of them."""

    def save_model(self, request, obj, form, change) -> None:
        before = {t.pk: snapshot(t) for t in _tasks_using(obj)} if change else {}
        super().save_model(request, obj, form, change)
        for task in _tasks_using(obj):
            self._record(request, task, before.get(task.pk), ScheduleChange.Action.UPDATED)

    # Deleting a schedule deletes the tasks that use it (django-celery-beat cascades).
    def delete_model(self, request, obj) -> None:
        for task in _tasks_using(obj):
            self._record(request, task, snapshot(task), ScheduleChange.Action.DELETED)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for schedule in queryset:
            for task in _tasks_using(schedule):
                self._record(request, task, snapshot(task), ScheduleChange.Action.DELETED)
        super().delete_queryset(request, queryset)


admin.site.unregister(CrontabSchedule)


@admin.register(CrontabSchedule)
class AuditedCrontabScheduleAdmin(_AuditedScheduleAdmin, beat_admin.CrontabScheduleAdmin):
    pass


admin.site.unregister(IntervalSchedule)


@admin.register(IntervalSchedule)
class AuditedIntervalScheduleAdmin(_AuditedScheduleAdmin, beat_admin.IntervalScheduleAdmin):
    pass


@admin.register(ScheduleChange)
class ScheduleChangeAdmin(admin.ModelAdmin):
    """Every schedule change, searchable; read-only."""

    list_display = ("changed_at", "schedule_name", "actor", "source", "action", "fields_changed")
    list_filter = ("source", "action", "actor")
    search_fields = ("schedule_name", "actor")
    date_hierarchy = "changed_at"
    readonly_fields = (
        "schedule_name",
        "periodic_task",
        "actor",
        "user",
        "source",
        "action",
        "what_changed",
        "changed_at",
    )
    exclude = ("changes",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="fields")
    def fields_changed(self, change: ScheduleChange) -> str:
        return ", ".join(sorted(change.changes)) if change.action != ScheduleChange.Action.RAN_NOW else ""

    @admin.display(description="what changed")
    def what_changed(self, change: ScheduleChange) -> str:
        return _render_changes(change)
