"""Audit-log retention: old entries deleted in bounded batches, recent ones kept, reruns harmless."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditLog
from audit.retention import delete_audit_logs_before
from jobs.errors import InvalidArgument
from tasks import maintenance
from tests.support.processes import wait_until
from tests.tasks.conftest import new_job_id, run_body, run_job

pytestmark = pytest.mark.django_db


def _logs(count: int, *, age_days: int) -> None:
    at = timezone.now() - timedelta(days=age_days)
    AuditLog.objects.bulk_create(
        [
            AuditLog(actor="test", action="x", object_type="billing.invoice", object_id=str(i), created_at=at)
            for i in range(count)
        ]
    )


def test_entries_past_retention_are_deleted_and_recent_ones_kept(settings):
    settings.AUDIT_LOG_RETENTION_DAYS = 365
    _logs(30, age_days=400)
    _logs(5, age_days=300)
    job_id = new_job_id()

    first = run_body(maintenance.cleanup_old_audit_logs, job_id=job_id)
    second = run_body(maintenance.cleanup_old_audit_logs, job_id=job_id)

    assert (first["deleted"], first["complete"]) == (30, True)
    assert second["deleted"] == 0
    assert AuditLog.objects.count() == 5


def test_older_than_days_overrides_the_retention():
    _logs(4, age_days=40)
    _logs(3, age_days=10)

    assert run_body(maintenance.cleanup_old_audit_logs, older_than_days=30)["deleted"] == 4
    assert AuditLog.objects.count() == 3


@pytest.mark.parametrize("value", [0, -5, "30", 2.5, True])
def test_unusable_older_than_days_fails_naming_it(value):
    with pytest.raises(InvalidArgument) as raised:
        run_job(maintenance.cleanup_old_audit_logs, older_than_days=value)
    assert list(raised.value.fields) == ["older_than_days"]


def test_deletes_run_in_batches_of_bounded_size_each_by_ids():
    _logs(2500, age_days=10)

    with CaptureQueriesContext(connection) as queries:
        result = delete_audit_logs_before(cutoff=timezone.now() - timedelta(days=1), batch_size=1000)

    assert result == {"deleted": 2500, "batches": 3, "complete": True}
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3
    assert all('"id" IN (' in sql for sql in deletes)


def test_a_run_stopped_by_its_time_budget_is_resumed_by_the_next():
    _logs(50, age_days=10)
    cutoff = timezone.now() - timedelta(days=1)

    stopped = delete_audit_logs_before(cutoff=cutoff, batch_size=20, time_budget=1e-9)
    # A spent budget still deletes one batch per run, so every run makes progress.
    assert stopped == {"deleted": 20, "batches": 1, "complete": False}

    resumed = delete_audit_logs_before(cutoff=cutoff, batch_size=20)
    assert resumed == {"deleted": 30, "batches": 2, "complete": True}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("live_worker")
def test_a_cleanup_out_of_time_continues_in_a_new_job_until_done(settings, monkeypatch):
    settings.AUDIT_LOG_RETENTION_DAYS = 365
    _logs(2500, age_days=400)
    _logs(3, age_days=10)
    # A budget spent after every batch (1,000 rows): the work takes three jobs.
    monkeypatch.setattr(maintenance, "AUDIT_CLEANUP_TIME_BUDGET_SECONDS", 1e-9)

    maintenance.cleanup_old_audit_logs.delay()

    wait_until(lambda: AuditLog.objects.count() == 3, timeout=60, what="the continuations to finish")
