"""Admin for API keys (never their secret), accepted jobs and received webhook events."""

from django.contrib import admin, messages
from django.utils import timezone

from http_api import keys
from http_api.models import AcceptedJob, ApiKey, WebhookEvent


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "key_prefix", "active", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    readonly_fields = ("name", "key_prefix", "created_at", "last_used_at", "revoked_at")
    exclude = ("prefix", "hashed_secret")
    actions = ("revoke_selected",)

    # A key is shown once, when created: that needs a terminal, not a form.
    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Key starts with")
    def key_prefix(self, obj: ApiKey) -> str:
        return f"pk_{obj.prefix}_…"

    @admin.display(boolean=True)
    def active(self, obj: ApiKey) -> bool:
        return obj.is_active

    @admin.action(description="Revoke selected API keys (takes effect at once)")
    def revoke_selected(self, request, queryset) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        keys.forget(*queryset.values_list("prefix", flat=True))
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


@admin.register(AcceptedJob)
class AcceptedJobAdmin(admin.ModelAdmin):
    list_display = ("job_id", "task_name", "api_key", "created_at")
    list_filter = ("task_name", "api_key")
    search_fields = ("job_id",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("provider", "event_type", "event_id", "job_id", "received_at")
    list_filter = ("provider", "event_type")
    search_fields = ("event_id", "job_id")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
