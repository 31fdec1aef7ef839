"""The admin before issue 16 point 6, registered side by side under /bench/stock-admin/ (bench/urls.py)
as the baseline of bench 10: django-celery-results' own TaskResultAdmin and GroupResultAdmin, and the
platform's dead-letter, effect, outbox and audit-log changelists as they were (Django's paginator
and count(*), icontains search over every column, DISTINCT filters, a date hierarchy)."""

from django.contrib import admin
from django_celery_results import admin as stock
from django_celery_results.models import GroupResult, TaskResult

from audit.models import AuditLog
from jobs.models import DeadLetter, Effect, OutboxMessage

site = admin.AdminSite(name="stock_admin")
site.register(TaskResult, stock.TaskResultAdmin)
site.register(GroupResult, stock.GroupResultAdmin)


@admin.register(DeadLetter, site=site)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ("task_name", "status", "exception_type", "attempts", "replay_count", "first_failed_at")
    list_filter = ("status", "task_name", "queue", "exception_type")
    search_fields = ("task_id", "task_name", "exception_message")
    date_hierarchy = "last_failed_at"


@admin.register(Effect, site=site)
class EffectAdmin(admin.ModelAdmin):
    list_display = ("key", "job_id", "created_at")
    search_fields = ("key", "job_id")


@admin.register(OutboxMessage, site=site)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("task_name", "job_id", "created_at", "published_at", "completed_at", "outcome")
    list_filter = (
        "outcome",
        "task_name",
        ("completed_at", admin.EmptyFieldListFilter),
        ("published_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("job_id", "task_name")


@admin.register(AuditLog, site=site)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor", "action", "object_type", "object_id")
    list_filter = ("object_type", "action")
    search_fields = ("actor", "action", "object_type", "object_id")
    date_hierarchy = "created_at"
    show_full_result_count = False
