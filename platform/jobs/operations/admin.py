"""Admin for the job machinery: dead letters (replay, discard), the effect ledger, the outbox and
task results (jobs/operations/result_admin.py), each fast at millions of rows
(jobs/operations/admin_scale.py); schedules in jobs/operations/schedules_admin.py."""

from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils.html import format_html

from jobs.dead_letters import ReplayFailed, discard_dead_letters, replay_dead_letters
from jobs.models import DeadLetter, Effect, OutboxMessage
from jobs.operations import (
    result_admin,  # noqa: F401  (replaces django-celery-results' admin)
    schedules_admin,  # noqa: F401  (schedules: django-celery-beat's, audited)
)
from jobs.operations.admin_scale import IndexedValuesFieldListFilter, LargeTableAdmin


@admin.register(DeadLetter)
class DeadLetterAdmin(LargeTableAdmin):
    list_display = (
        "task_name",
        "status",
        "exception_type",
        "attempts",
        "replay_count",
        "first_failed_at",
        "last_failed_at",
        "queue",
    )
    list_filter = (
        "status",
        ("task_name", IndexedValuesFieldListFilter),
        ("queue", IndexedValuesFieldListFilter),
        ("exception_type", IndexedValuesFieldListFilter),
        "last_failed_at",
    )
    search_exact_fields = ("task_id",)
    search_prefix_fields = ("task_name",)
    merge_prefix_field = "task_name"  # deadletter_task_failed_idx (jobs 0004)
    search_help_text = "A task id (exactly), or the beginning of a task name."
    actions = ("replay_selected", "discard_selected")
    readonly_fields = (
        "task_id",
        "task_name",
        "queue",
        "args",
        "kwargs",
        "exception_type",
        "exception_message",
        "formatted_traceback",
        "attempts",
        "first_failed_at",
        "last_failed_at",
        "status",
        "replay_count",
        "resolved_at",
        "resolved_by",
    )
    exclude = ("traceback",)
    # Adds Replay and Discard buttons to an open dead letter's page.
    change_form_template = "admin/jobs/deadletter/change_form.html"

    class Media:
        # Its page's styles as a static file: the Content-Security-Policy allows no inline style.
        css = {"all": ("operations/dead_letter.css",)}

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Traceback")
    def formatted_traceback(self, obj: DeadLetter) -> str:
        return format_html('<pre class="dead-letter-traceback">{}</pre>', obj.traceback)

    def get_urls(self):
        urls = super().get_urls()
        resolve = path(
            "<int:pk>/resolve/",
            self.admin_site.admin_view(self.resolve_view),
            name="jobs_deadletter_resolve",
        )
        return [resolve, *urls]

    def resolve_view(self, request, pk: int):
        letter = get_object_or_404(DeadLetter, pk=pk)
        if request.method == "POST" and self.has_change_permission(request, letter):
            action = request.POST.get("do")
            if action == "replay":
                self.replay_selected(request, [letter])
            elif action == "discard":
                self.discard_selected(request, [letter])
        return redirect("admin:jobs_deadletter_change", pk)

    @admin.action(description="Replay selected dead letters (same job id)", permissions=["change"])
    def replay_selected(self, request, queryset) -> None:
        try:
            count = replay_dead_letters(list(queryset), by=request.user.get_username())
        except ReplayFailed as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"Replayed {count} dead letter(s).", messages.SUCCESS)

    @admin.action(description="Discard selected dead letters", permissions=["change"])
    def discard_selected(self, request, queryset) -> None:
        count = discard_dead_letters(list(queryset), by=request.user.get_username())
        self.message_user(request, f"Discarded {count} dead letter(s).", messages.SUCCESS)


@admin.register(Effect)
class EffectAdmin(LargeTableAdmin):
    list_display = ("key", "job_id", "created_at")
    search_exact_fields = ("job_id",)
    search_prefix_fields = ("key",)
    search_help_text = "A job id (exactly), or the beginning of an effect key (reminder:invoice:42:)."
    readonly_fields = ("key", "job_id", "created_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(LargeTableAdmin):
    list_display = (
        "task_name",
        "job_id",
        "state",
        "created_at",
        "published_at",
        "publish_attempts",
        "completed_at",
        "outcome",
    )
    list_filter = (
        ("outcome", IndexedValuesFieldListFilter),
        ("task_name", IndexedValuesFieldListFilter),
        ("completed_at", admin.EmptyFieldListFilter),
        ("published_at", admin.EmptyFieldListFilter),
    )
    search_exact_fields = ("job_id",)
    search_prefix_fields = ("task_name",)
    merge_prefix_field = "task_name"  # outbox_task_id_idx (jobs 0004)
    search_help_text = "A job id (exactly), or the beginning of a task name."
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
