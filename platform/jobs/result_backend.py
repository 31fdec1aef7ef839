"""The result backend: django-celery-results', writing once more on a fresh connection when the
database dropped ours (a restart, a failover, pg_terminate_backend).

Celery stores STARTED before the task body runs; if that write fails, Celery reports an
internal error and acknowledges the message: the job would be gone, with no retry and no dead
letter. The connection health check before each task (tasks/app.py) catches a connection that
died while idle; this catches one that dies between that check and the write.
"""

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
