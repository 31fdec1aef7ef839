"""A result write survives the database dropping the worker's connection, and writes each state in one
statement (platform/jobs/result_backend.py)."""

import json

import psycopg2
import pytest
from celery import signals
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_results.models import TaskResult

from tasks.app import app
from tasks.maintenance import noop

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


class _Request:
    """What Celery hands the backend about a job: the fields extended results keep."""

    id = "job-one-statement"
    task = name = "tasks.notifications.send_whatsapp_message"
    argsrepr = "()"
    kwargsrepr = "{'to': '+1416*****23'}"
    hostname = "worker@test"
    periodic_task_name = None
    children = ()
    group = parent_id = root_id = None
    retries = 0
    delivery_info = {"routing_key": "notifications"}
    ignore_result = False
    meta = {"retries": 0}


def test_each_state_is_one_statement_and_started_does_not_wait_for_the_disk():
    # docs: platform/jobs/result_backend.py. STARTED: one round trip, commit not flushed to disk
    # before the body runs; SUCCESS: one round trip, durable; the row keeps what each wrote.
    if connection.vendor != "postgresql":
        pytest.fail("needs PostgreSQL (INSERT ... ON CONFLICT)")
    request = _Request()

    with CaptureQueriesContext(connection) as started:
        app.backend.store_result(request.id, {"pid": 1, "hostname": "w"}, "STARTED", request=request)
    first = TaskResult.objects.get(task_id=request.id)
    with CaptureQueriesContext(connection) as succeeded:
        app.backend.store_result(request.id, "sent", "SUCCESS", request=request)
    done = TaskResult.objects.get(task_id=request.id)

    assert len(started.captured_queries) == 1
    assert "synchronous_commit TO OFF" in started.captured_queries[0]["sql"]
    assert len(succeeded.captured_queries) == 1
    assert "synchronous_commit" not in succeeded.captured_queries[0]["sql"]
    assert first.status == "STARTED" and first.date_started is not None
    assert done.status == "SUCCESS" and json.loads(done.result) == "sent"
    assert done.date_created == first.date_created and done.date_started == first.date_started
    assert done.date_done >= first.date_done
    assert done.task_name == request.task and "+1416*****23" in done.task_kwargs
    assert done.worker == "worker@test" and json.loads(done.meta)["retries"] == 0


def test_the_started_write_is_the_connection_check_before_a_task_body():
    # jobs/celery_app.py re-arms the health check before every task; when the first query is the
    # STARTED write (which reconnects by itself, test above), no separate SELECT 1 is paid.
    connection.ensure_connection()
    noop.push_request(id="job-prerun", is_eager=False)
    try:
        with CaptureQueriesContext(connection):
            signals.task_prerun.send(sender=noop, task_id="job-prerun", task=noop, args=(), kwargs={})
        assert connection.health_check_done is True
        noop.ignore_result = True  # no STARTED write comes: the check stays armed
        signals.task_prerun.send(sender=noop, task_id="job-prerun", task=noop, args=(), kwargs={})
        assert connection.health_check_done is False
    finally:
        noop.ignore_result = False
        noop.pop_request()
