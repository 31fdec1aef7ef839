"""Rows whose commit need not wait for the disk: written in one round trip, in an implicit
transaction whose commit returns before PostgreSQL has flushed it (`SET LOCAL synchronous_commit
TO OFF`, which lasts for that transaction only).

Only for marks another record makes redundant, never for what the platform promises to keep: a
server crash may lose the last fraction of a second of them (wal_writer_delay), and nothing else.
Users: the STARTED state (jobs/result_backend.py; the final state overwrites it) and the trigger
API's acceptance record of a job without an Idempotency-Key (http_api/services.py; the broker
already holds the job, and its result row follows). Outside autocommit, or on another database,
the statement runs as it is, inside the caller's transaction.
"""

from __future__ import annotations

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

PREFIX = "SET LOCAL synchronous_commit TO OFF; "


def without_waiting_for_disk(connection: BaseDatabaseWrapper, sql: str) -> str:
    """`sql` (one statement) run so that its commit does not wait for the disk, where it can."""
    if connection.vendor == "postgresql" and connection.get_autocommit():
        # psycopg2 sends both as one simple query: one round trip, one implicit transaction.
        return PREFIX + sql
    return sql


def insert(row: models.Model, connection: BaseDatabaseWrapper) -> None:
    """INSERT `row` (every concrete field, auto_now_add and defaults applied), commit not awaited."""
    meta = row._meta
    fields = [field for field in meta.concrete_fields]
    quote = connection.ops.quote_name
    values = [field.get_db_prep_save(field.pre_save(row, add=True), connection) for field in fields]
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "  # noqa: S608 names quoted from model metadata; values bound as parameters
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(without_waiting_for_disk(connection, sql), values)
    row._state.adding = False
    row._state.db = connection.alias
