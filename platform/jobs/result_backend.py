"""The result backend: django-celery-results', each state written in one statement, writing once
more on a fresh connection when the database dropped ours (a restart, a failover,
pg_terminate_backend); deleting expired results in bounded batches; and each job's retry
count in its result row.

One statement per state: django-celery-results writes a state with get_or_create and save, a
SELECT then an INSERT in its own transaction (BEGIN, INSERT, COMMIT) or an UPDATE: four round
trips for a job's first state and two for each later one. On PostgreSQL this backend writes each
state as one `INSERT ... ON CONFLICT (task_id) DO UPDATE` instead, with what the library would
have written (date_created kept from the first state, date_started from STARTED). The STARTED
state, written before the task body runs, also does not wait for its commit to reach the disk
(jobs/async_commit.py, in the same round trip): it is a progress mark that the
job's final state overwrites, and a server crash that lost it loses nothing else. Final states
(SUCCESS, FAILURE, RETRY...) are committed as durably as any other row. Other databases (SQLite
in local tests) keep the library's own path.

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

from celery import signals, states
from celery.utils.time import maybe_timedelta
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, router
from django.utils import timezone
from django_celery_results.backends.database import DatabaseBackend

from jobs.async_commit import without_waiting_for_disk
from jobs.batch_delete import BatchDeletion, delete_in_batches


class ReconnectingDatabaseBackend(DatabaseBackend):
    def _store_result(self, *args, **kwargs):
        try:
            return self._write_state(*args, **kwargs)
        except (OperationalError, InterfaceError):
            for connection in connections.all(initialized_only=True):
                connection.close()
            return self._write_state(*args, **kwargs)

    def _write_state(self, task_id, result, status, traceback=None, request=None, using=None):
        model = self.TaskModel
        alias = using or router.db_for_write(model)
        connection = connections[alias]
        if connection.vendor != "postgresql":
            return super()._store_result(task_id, result, status, traceback, request, using)
        content_type, content_encoding, encoded = self.encode_content(result)
        meta = {**self._get_meta_from_request(request), "children": self.current_task_children(request)}
        _, _, encoded_meta = self.encode_content(meta)
        now = timezone.now()
        # The library's fields, in its order (its _store_result): extended properties last.
        fields = {
            "content_encoding": content_encoding,
            "content_type": content_type,
            "meta": encoded_meta,
            "result": encoded,
            "status": status,
            "traceback": traceback,
            **self._get_extended_properties(request, traceback),
            "date_done": now,
        }
        if status == states.STARTED:
            fields["date_started"] = now
        _upsert(connection, model, task_id, fields, now, durable=status != states.STARTED)
        return encoded

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


def _upsert(connection, model, task_id: str, fields: dict, now, *, durable: bool) -> None:
    """One INSERT ... ON CONFLICT (task_id) DO UPDATE of `fields` (date_created only on insert)."""
    meta = model._meta
    quote = connection.ops.quote_name
    columns = {"task_id": task_id, "date_created": now, **fields}
    names = [meta.get_field(name).column for name in columns]
    values = [meta.get_field(name).get_db_prep_save(value, connection) for name, value in columns.items()]
    updates = ", ".join(
        f"{quote(meta.get_field(name).column)} = EXCLUDED.{quote(meta.get_field(name).column)}"
        for name in fields
    )
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(map(quote, names))}) "  # noqa: S608 names quoted from model metadata; values bound as parameters
        f"VALUES ({', '.join(['%s'] * len(names))}) "
        f"ON CONFLICT ({quote(meta.get_field('task_id').column)}) DO UPDATE SET {updates}"
    )
    if not durable:
        sql = without_waiting_for_disk(connection, sql)  # one round trip still
    with connection.cursor() as cursor:
        cursor.execute(sql, values)


@signals.task_prerun.connect(dispatch_uid="jobs.record_retries")
def record_retries(task=None, **_kwargs) -> None:
    request = getattr(task, "request", None)
    if request is None:
        return
    meta = dict(getattr(request, "meta", None) or {})
    meta["retries"] = int(request.retries or 0)
    request.meta = meta


@signals.task_prerun.connect(dispatch_uid="jobs.started_write_checks_the_connection")
def started_write_checks_the_connection(task=None, **_kwargs) -> None:
    """jobs/celery_app.py re-arms CONN_HEALTH_CHECKS before every task, so that a connection the
    server dropped is replaced before the task's first query. Where that first query is this
    backend's STARTED write, which is written once more on a fresh connection when ours is dead
    (ReconnectingDatabaseBackend), the write is the health check: a separate one would cost a
    round trip before every task body. Connected after celery_app's handler (JobsConfig.ready())."""
    if task is None or getattr(task.request, "is_eager", False):
        return
    if not task.track_started or task.ignore_result:  # Celery's own condition (celery/app/trace.py)
        return
    backend = task.backend
    if isinstance(backend, ReconnectingDatabaseBackend):
        connections[router.db_for_write(backend.TaskModel)].health_check_done = True
