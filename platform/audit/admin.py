"""Admin for the audit log: read-only, because an editable history is no history."""

from django.contrib import admin

from audit.models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor", "action", "object_type", "object_id")
    list_filter = ("object_type", "action")
    search_fields = ("actor", "action", "object_type", "object_id")
    date_hierarchy = "created_at"
    readonly_fields = ("created_at", "actor", "action", "object_type", "object_id", "changes")
    # The changelist's count(*) on a big table is slow and not needed to page through it.
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Retention (tasks.maintenance.cleanup_old_audit_logs) is the only way rows leave.
        return False
