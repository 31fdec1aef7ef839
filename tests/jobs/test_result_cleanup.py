"""The expired-result cleanup (`celery.backend_cleanup`, run by a real worker) deletes in bounded
batches, each its own short transaction (platform/jobs/result_backend.py), where
django-celery-results deletes everything expired in one. PostgreSQL itself reports the
transactions: a statement trigger records each DELETE's transaction id and row count."""

import math

import pytest
from django.db import connection
from django_celery_results.models import TaskResult

from tasks.app import app

pytestmark = pytest.mark.django_db(transaction=True)

EXPIRED, FRESH, BATCH = 23, 4, 5

PROBE = """
CREATE TABLE cleanup_probe (txid bigint, deleted int);
CREATE FUNCTION cleanup_probe_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO cleanup_probe SELECT txid_current(), count(*) FROM old_rows; RETURN NULL; END $$;
CREATE TRIGGER cleanup_probe AFTER DELETE ON django_celery_results_taskresult
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cleanup_probe_record();
"""
UNPROBE = """
DROP TRIGGER IF EXISTS cleanup_probe ON django_celery_results_taskresult;
DROP FUNCTION IF EXISTS cleanup_probe_record();
DROP TABLE IF EXISTS cleanup_probe;
"""


@pytest.fixture
def delete_probe():
    if connection.vendor != "postgresql":
        pytest.fail("needs PostgreSQL (a statement trigger with a transition table)")
    with connection.cursor() as cursor:
        cursor.execute(PROBE)
    yield
    with connection.cursor() as cursor:
        cursor.execute(UNPROBE)


def _deletes_by_transaction() -> dict[int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT txid, sum(deleted) FROM cleanup_probe GROUP BY txid")
        return dict(cursor.fetchall())


def test_backend_cleanup_deletes_expired_results_a_batch_per_transaction(live_worker, delete_probe, settings):
    settings.RESULT_CLEANUP_BATCH_SIZE = BATCH
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO django_celery_results_taskresult (task_id, task_name, status, content_type,
                 content_encoding, date_created, date_done)
               SELECT 'cleanup-' || i, 'tasks.fx.refresh_exchange_rates', 'SUCCESS', 'application/json',
                 'utf-8', now() - interval '8 days',
                 CASE WHEN i <= %s THEN now() - interval '8 days' - i * interval '1 minute'
                      ELSE now() - interval '1 day' END
               FROM generate_series(1, %s) AS i""",
            [EXPIRED, EXPIRED + FRESH],
        )

    app.send_task("celery.backend_cleanup").get(timeout=60)

    by_transaction = _deletes_by_transaction()
    assert sum(by_transaction.values()) == EXPIRED
    assert len(by_transaction) == math.ceil(EXPIRED / BATCH)  # 5 transactions, not 1
    assert max(by_transaction.values()) <= BATCH
    left = TaskResult.objects.filter(task_id__startswith="cleanup-")
    assert left.count() == FRESH
    assert sorted(left.values_list("task_id", flat=True)) == sorted(
        f"cleanup-{i}" for i in range(EXPIRED + 1, EXPIRED + FRESH + 1)
    )
