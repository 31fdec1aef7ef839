"""The result backend: django-celery-results', writing once more on a fresh connection when the
database dropped ours (a restart, a failover, pg_terminate_backend); deleting expired results in
bounded batches; and each job's retry count in its result row.

Celery stores STARTED before the task body runs; if that write fails, Celery reports an
internal error and acknowledges the message: the job would be gone, with no retry and no dead
letter. The connection health check before each task (jobs/celery_app.py) catches a connection
that died while idle; this catches one that dies between that check and the write.

django-celery-results keeps no retries column; it does store `request.meta` as the row's meta
on every state change (STARTED, RETRY, SUCCESS, FAILURE), so record_retries puts the count there
before the task runs, at no extra write (GET /api/v1/jobs/<id> reads it). Connected in
JobsConfig.ready(), so every worker records it for every task.

The expired-result cleanup (`celery.backend_cleanup`, daily in beat_schedules/defaults.py) calls
cleanup(): django-celery-results deletes everything expired in one DELETE, one transaction that
at 10 jobs/s holds about 860,000 row locks and their WAL for minutes. Here it goes
RESULT_CLEANUP_BATCH_SIZE rows per short transaction, oldest first (jobs/batch_delete.py), by the
date_done index.
"""

from celery import signals
from celery.utils.time import maybe_timedelta
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from django.utils import timezone
from django_celery_results.backends.database import DatabaseBackend

from jobs.batch_delete import BatchDeletion, delete_in_batches


class ReconnectingDatabaseBackend(DatabaseBackend):
    def _store_result(self, *args, **kwargs):
        try:
            return super()._store_result(*args, **kwargs)
        except (OperationalError, InterfaceError):
            for connection in connections.all(initialized_only=True):
                connection.close()
            return super()._store_result(*args, **kwargs)

    def cleanup(self) -> dict[str, BatchDeletion] | None:
        """Delete results (and group results) done before now - CELERY_RESULT_EXPIRES, in batches."""
        if not self.expires:
            return None
        cutoff = timezone.now() - maybe_timedelta(self.expires)
        batch_size = settings.RESULT_CLEANUP_BATCH_SIZE
        return {
            "task_results": delete_in_batches(
                self.TaskModel._default_manager.filter(date_done__lt=cutoff).order_by("date_done"),
                batch_size=batch_size,
            ),
            "group_results": delete_in_batches(
                self.GroupModel._default_manager.filter(date_done__lt=cutoff).order_by("date_done"),
                batch_size=batch_size,
            ),
        }


@signals.task_prerun.connect(dispatch_uid="jobs.record_retries")
def record_retries(task=None, **_kwargs) -> None:  # noqa: ANN001
    request = getattr(task, "request", None)
    if request is None:
        return
    meta = dict(getattr(request, "meta", None) or {})
    meta["retries"] = int(request.retries or 0)
    request.meta = meta
