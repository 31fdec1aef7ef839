"""Reads of the audit log: what retention cleanup deletes."""

from datetime import datetime

from django.db.models import QuerySet

from audit.models import AuditLog


def audit_logs_older_than(*, cutoff: datetime) -> QuerySet[AuditLog]:
    """Entries created before `cutoff`, oldest first (served by auditlog_created_idx)."""
    return AuditLog.objects.filter(created_at__lt=cutoff).order_by("created_at")


def audit_log_ids_older_than(*, cutoff: datetime, limit: int) -> list[int]:
    """One batch of ids to delete; batches keep each delete's locks and WAL small."""
    return list(audit_logs_older_than(cutoff=cutoff).values_list("pk", flat=True)[:limit])


def audit_trail(*, obj) -> QuerySet[AuditLog]:
    """Every entry about one row, newest first."""
    return AuditLog.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))
