"""Deleting many rows without long locks: one batch of ids, then a delete by those ids, in a short
transaction each, so memory, locks and WAL per step stay small and other writers are never blocked
for long. Nothing is held between batches: a run stopped anywhere (time budget, crash, redelivery)
leaves only whole batches deleted, and the next run carries on. Used by every retention job."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet

BATCH_SIZE = 1000


@dataclass(frozen=True)
class BatchDeletion:
    deleted: int  # rows deleted, cascades included
    batches: int
    complete: bool  # False: the time budget ran out with rows left


def delete_in_batches(
    queryset: QuerySet, *, batch_size: int = BATCH_SIZE, time_budget: float | None = None
) -> BatchDeletion:
    """Delete the rows of `queryset`, `batch_size` at a time in its order; past `time_budget`
    seconds, stop between batches (always after one at least, so every run makes progress)."""
    deadline = time.monotonic() + time_budget if time_budget else None
    deleted = batches = 0
    while True:
        if batches and deadline is not None and time.monotonic() > deadline:
            return BatchDeletion(deleted, batches, complete=False)
        with transaction.atomic():
            ids = list(queryset.values_list("pk", flat=True)[:batch_size])
            if not ids:
                return BatchDeletion(deleted, batches, complete=True)
            deleted += queryset.model._base_manager.filter(pk__in=ids).delete()[0]
        batches += 1
