"""Reads of the audit log: what retention cleanup deletes, and one row's trail."""

from datetime import datetime

from django.db.models import QuerySet

from audit.models import AuditLog


def audit_logs_older_than(*, cutoff: datetime) -> QuerySet[AuditLog]:
    """Entries created before `cutoff`, oldest first (served by auditlog_created_idx)."""
    return AuditLog.objects.filter(created_at__lt=cutoff).order_by("created_at")


def audit_trail(*, obj) -> QuerySet[AuditLog]:
    """Every entry about one row, newest first."""
    return AuditLog.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))
