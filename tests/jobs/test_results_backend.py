"""A result write survives the database dropping the worker's connection (platform/jobs/result_backend.py)."""

import psycopg2
import pytest
from django.db import connection
from django_celery_results.models import TaskResult

from tasks.app import app

pytestmark = pytest.mark.django_db(transaction=True)


def test_state_is_stored_even_when_the_database_dropped_the_connection():
    if connection.vendor != "postgresql":
        pytest.fail("needs PostgreSQL (pg_terminate_backend)")
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    s = connection.settings_dict
    with psycopg2.connect(
        dbname=s["NAME"],
        user=s["USER"],
        host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
        password=s["PASSWORD"] or None,
    ) as other:
        other.autocommit = True
        other.cursor().execute("SELECT pg_terminate_backend(%s)", [pid])
    other.close()  # psycopg2's `with` ends the transaction, not the connection

    app.backend.store_result("job-after-a-drop", {"pid": 1}, "STARTED")

    assert TaskResult.objects.get(task_id="job-after-a-drop").status == "STARTED"
