"""Migration operations that add an index to a big table without blocking its writers: PostgreSQL's
CREATE INDEX CONCURRENTLY (the migration must set `atomic = False`), reversible with DROP INDEX
CONCURRENTLY. Usable on tables of other packages (django_celery_results), whose models we cannot
give a Meta index. `condition`: a partial index's WHERE clause, as SQL. An index left invalid by an
interrupted build is dropped and built again. On SQLite (`make run`) a plain CREATE INDEX, without
the PostgreSQL-only operator class."""

from __future__ import annotations

from django.db import migrations


def create_index_concurrently(
    table: str, name: str, columns: list[str], *, opclass: str = "", condition: str = ""
) -> migrations.RunPython:
    where = f" WHERE {condition}" if condition else ""

    def forwards(apps, schema_editor) -> None:
        connection = schema_editor.connection
        qn = connection.ops.quote_name
        if connection.vendor != "postgresql":
            cols = ", ".join(qn(c) for c in columns)
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {qn(name)} ON {qn(table)} ({cols}){where}")
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name])
            row = cursor.fetchone()
        if row and row[0]:
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {qn(name)}")
        cols = ", ".join(f"{qn(c)} {opclass}".strip() for c in columns)
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {qn(name)} ON {qn(table)} ({cols}){where}"
        )

    def backwards(apps, schema_editor) -> None:
        connection = schema_editor.connection
        concurrently = "CONCURRENTLY " if connection.vendor == "postgresql" else ""
        schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {connection.ops.quote_name(name)}")

    return migrations.RunPython(forwards, backwards, elidable=False)
