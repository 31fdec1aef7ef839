"""The audit log: one row per state change a service made, who made it and what changed."""

from django.db import models
from django.utils import timezone


class AuditLog(models.Model):
    # A plain string, not a FK: entries must outlive the users and jobs that wrote them
    # ("alice", "system", "task:tasks.deals.check_stalled_deals").
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100, help_text="app_label.model of the changed row")
    object_id = models.CharField(max_length=64)
    changes = models.JSONField(default=dict, blank=True, help_text='{"field": [old, new], ...}')
    # A default rather than auto_now_add, so demo data and retention tests can backdate rows.
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            # Retention cleanup deletes by age (audit.selectors.audit_logs_older_than).
            models.Index(fields=["created_at"], name="auditlog_created_idx"),
            models.Index(fields=["object_type", "object_id"], name="auditlog_object_idx"),
            # The admin at a million rows (jobs/operations/admin_scale.py; migration 0002): the action filter,
            # search by object id and by actor prefix.
            models.Index(fields=["action"], name="auditlog_action_idx"),
            models.Index(fields=["object_id"], name="auditlog_object_id_idx"),
            models.Index(fields=["actor"], name="auditlog_actor_like_idx", opclasses=["varchar_pattern_ops"]),
            # An actor's rows newest first, whatever their number: each actor of an actor-prefix
            # search (jobs/operations/admin_scale.py; migration 0003).
            models.Index(fields=["actor", "created_at", "id"], name="auditlog_actor_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.object_type}#{self.object_id}"
