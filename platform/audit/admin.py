"""Admin for the audit log: read-only, because an editable history is no history."""

from django.contrib import admin

from audit.models import AuditLog
from jobs.operations.admin_scale import IndexedValuesFieldListFilter, LargeTableAdmin


@admin.register(AuditLog)
class AuditLogAdmin(LargeTableAdmin):
    """Fast at millions of rows (jobs/operations/admin_scale.py): estimated counts, indexed filters
    and search."""

    list_display = ("created_at", "actor", "action", "object_type", "object_id")
    list_filter = (
        ("object_type", IndexedValuesFieldListFilter),
        ("action", IndexedValuesFieldListFilter),
        "created_at",
    )
    search_exact_fields = ("object_id",)
    search_prefix_fields = ("actor",)
    # Actors are few (staff, "system", one per task): a prefix is read as the merge of each actor's
    # newest rows (auditlog_actor_created_idx, audit 0003).
    merge_prefix_field = "actor"
    search_help_text = "An object id (exactly), or the beginning of an actor (alice, task:tasks.deals.)."
    readonly_fields = ("created_at", "actor", "action", "object_type", "object_id", "changes")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Retention (tasks.maintenance.cleanup_old_audit_logs) is the only way rows leave.
        return False
