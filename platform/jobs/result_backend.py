"""The result backend: django-celery-results', writing once more on a fresh connection when the
database dropped ours (a restart, a failover, pg_terminate_backend); and each job's retry count
in its result row.

Celery stores STARTED before the task body runs; if that write fails, Celery reports an
internal error and acknowledges the message: the job would be gone, with no retry and no dead
letter. The connection health check before each task (jobs/celery_app.py) catches a connection
that died while idle; this catches one that dies between that check and the write.

django-celery-results keeps no retries column; it does store `request.meta` as the row's meta
on every state change (STARTED, RETRY, SUCCESS, FAILURE), so record_retries puts the count there
before the task runs, at no extra write (GET /api/v1/jobs/<id> reads it). Connected in
JobsConfig.ready(), so every worker records it for every task.
"""

from celery import signals
from django.db import InterfaceError, OperationalError, connections
from django_celery_results.backends.database import DatabaseBackend


class ReconnectingDatabaseBackend(DatabaseBackend):
    def _store_result(self, *args, **kwargs):
        try:
            return super()._store_result(*args, **kwargs)
        except (OperationalError, InterfaceError):
            for connection in connections.all(initialized_only=True):
                connection.close()
            return super()._store_result(*args, **kwargs)


@signals.task_prerun.connect(dispatch_uid="jobs.record_retries")
def record_retries(task=None, **_kwargs) -> None:  # noqa: ANN001
    request = getattr(task, "request", None)
    if request is None:
        return
    meta = dict(getattr(request, "meta", None) or {})
    meta["retries"] = int(request.retries or 0)
    request.meta = meta
