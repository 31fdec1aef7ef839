"""Audit-log retention: delete entries past their retention in bounded batches.

Each batch reads at most `batch_size` ids (oldest first, auditlog_created_idx) and deletes them by
id in its own short transaction, so memory, locks and WAL per step stay small and other writers
are never blocked for long. Nothing is held between batches: a run stopped anywhere (time budget,
crash, redelivery) leaves only fully deleted batches behind, and the next run simply carries on.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from django.db import transaction

from audit.selectors import audit_log_ids_older_than
from audit.services import delete_audit_logs

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000


def delete_audit_logs_before(
    *, cutoff: datetime, batch_size: int = BATCH_SIZE, time_budget: float | None = None
) -> dict:
    """Delete entries created before `cutoff`; stops early (complete=False) past `time_budget` s."""
    deadline = time.monotonic() + time_budget if time_budget else None
    deleted = batches = 0
    while True:
        if batches and deadline is not None and time.monotonic() > deadline:  # always one batch
            logger.info("audit-log cleanup: time budget spent after %s rows; the next run resumes", deleted)
            return {"deleted": deleted, "batches": batches, "complete": False}
        with transaction.atomic():
            ids = audit_log_ids_older_than(cutoff=cutoff, limit=batch_size)
            if not ids:
                break
            deleted += delete_audit_logs(ids=ids)
        batches += 1
    return {"deleted": deleted, "batches": batches, "complete": True}
