"""How a task turns an id argument into its row: an id that names nothing fails the job permanently
(a dead letter naming the argument); a row deleted since the job was enqueued is a logged no-op.
(That the id is a positive integer at all is the task's argument type: jobs/arguments.py RowId.)

Telling the two apart: every row the platform creates or changes through its services leaves an
audit-log entry (audit.services), and rows deleted in admin leave an admin LogEntry. So an id with
such a trace existed once and was deleted meanwhile: nothing to do, and no retry (PostHog's
"row gone" rule). An id with no trace at all was never ours: the caller sent a wrong id, which
waiting will not fix, so the job fails at once into a dead letter whose message names the
argument. (A row deleted so long ago that retention removed its audit trail also reads as
unknown; a job that old is worth a human look anyway.)
"""

from __future__ import annotations

import logging
from typing import TypeVar

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models

from audit.models import AuditLog
from jobs.errors import InvalidArgument

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=models.Model)


def fetch_subject(model: type[M], pk: int, *, argument: str, queryset=None) -> M | None:
    """The row `model` #pk; None (logged) if it was deleted meanwhile; InvalidArgument naming
    `argument` if the id was never known."""
    row = (queryset if queryset is not None else model._default_manager).filter(pk=pk).first()
    if row is not None:
        return row
    if existed(model, pk):
        logger.info("%s #%s was deleted meanwhile: nothing to do", model._meta.label, pk)
        return None
    raise InvalidArgument(argument, f"no {model._meta.verbose_name} with id {pk}")


def existed(model: type[models.Model], pk: int) -> bool:
    """Whether row #pk of `model` has left a trace (audit log or admin log): it existed once."""
    if AuditLog.objects.filter(object_type=model._meta.label_lower, object_id=str(pk)).exists():
        return True
    content_type = ContentType.objects.get_for_model(model)
    return LogEntry.objects.filter(content_type=content_type, object_id=str(pk)).exists()
