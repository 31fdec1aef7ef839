"""Audit-log retention: entries past their retention deleted in bounded batches, oldest first
(auditlog_created_idx), by jobs/batch_delete.py; a run stopped anywhere is carried on by the next."""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime

from audit.selectors import audit_logs_older_than
from jobs.batch_delete import delete_in_batches

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000


def delete_audit_logs_before(
    *, cutoff: datetime, batch_size: int = BATCH_SIZE, time_budget: float | None = None
) -> dict:
    """Delete entries created before `cutoff`; stops early (complete=False) past `time_budget` s."""
    result = delete_in_batches(
        audit_logs_older_than(cutoff=cutoff), batch_size=batch_size, time_budget=time_budget
    )
    if not result.complete:
        logger.info(
            "audit-log cleanup: time budget spent after %s rows; the next run resumes", result.deleted
        )
    return asdict(result)
