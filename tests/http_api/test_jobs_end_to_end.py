"""Jobs started over HTTP on a real worker and a real Redis broker: their status moves through the
Celery states, retries are counted, a job that gives up shows as a dead letter; two racing
requests with one Idempotency-Key create one job."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.test import Client

from http_api import registry
from http_api.models import AcceptedJob
from http_api.services import accept_job, body_hash
from tests.http_api.conftest import post_job
from tests.support.probe import tasks as probe
from tests.support.probe.models import ProbeEffect
from tests.support.processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def probe_tasks(monkeypatch):
    """Declare the test-only probe tasks as triggerable (the registry is a plain table)."""
    for task in (probe.effect, probe.always_transient):
        monkeypatch.setitem(registry.TRIGGERABLE, task.name, registry.TriggerableTask(task, "probe"))


def _wait_state(api, job_id: str, *states: str, timeout: float = 30) -> dict:
    return wait_until(
        lambda: (body := api.get(f"/api/v1/jobs/{job_id}").json())["state"] in states and body,
        timeout=timeout,
        what=f"job {job_id} to reach {states}",
    )


@pytest.mark.usefixtures("live_worker")
def test_a_job_runs_and_its_status_shows_success_and_result(api, probe_tasks, marker):
    accepted = post_job(api, {"task": "probe.effect", "kwargs": {"marker": marker}})
    assert accepted.status_code == 202

    status = _wait_state(api, accepted.json()["id"], "SUCCESS")

    assert status["result"] == marker and status["error"] is None
    assert status["task"] == "probe.effect"
    assert status["retries"] == 0 and status["dead_letter"] is False
    assert status["date_done"] is not None and status["date_created"] is not None
    assert ProbeEffect.objects.filter(marker=marker).count() == 1


@pytest.mark.usefixtures("live_worker")
def test_a_job_that_gives_up_shows_its_retries_error_and_dead_letter(api, probe_tasks, marker):
    accepted = post_job(api, {"task": "probe.always_transient", "kwargs": {"marker": marker}})

    status = _wait_state(api, accepted.json()["id"], "FAILURE", timeout=60)

    # probe.always_transient: max_retries=3, so 4 attempts, 3 retries.
    assert status["retries"] == 3
    assert status["dead_letter"] is True
    assert status["error"] == {"type": "TransientError", "message": "still down"}
    assert status["result"] is None


def test_two_concurrent_requests_with_one_idempotency_key_create_one_job(api_key):
    body = {"task": "tasks.fx.update_exchange_rates", "countdown": 3600}
    barrier = threading.Barrier(2)
    answers: list = []

    def request() -> None:
        client = Client(**api_key.header)  # each thread: its own client and database connection
        barrier.wait()
        answers.append(post_job(client, body, HTTP_IDEMPOTENCY_KEY="race-1"))

        connection.close()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    assert sorted(a.get("Idempotent-Replayed", "") for a in answers) == ["", "true"]
    assert AcceptedJob.objects.count() == 1


def test_a_request_racing_an_uncommitted_one_with_the_same_key_gets_the_first_job(api_key):
    """Deterministic version of the race: the first request's transaction is held open until the
    second one is blocked on the unique index; then the first commits and the second returns it."""

    arguments = {
        "api_key": api_key.row,
        "task_name": "tasks.fx.update_exchange_rates",
        "kwargs": {},
        "countdown": 3600,
        "idempotency_key": "held",
        "request_hash": body_hash({"a": 1}),
    }
    first_inserted, results = threading.Event(), {}

    def first() -> None:
        with transaction.atomic():
            results["first"] = accept_job(**arguments)
            first_inserted.set()
            wait_until(_someone_waits_on_a_lock, timeout=20, what="the second request to block")
        connection.close()

    def second() -> None:
        first_inserted.wait(20)
        results["second"] = accept_job(**arguments)
        connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert results["second"].job.pk == results["first"].job.pk
    assert (results["first"].replayed, results["second"].replayed) == (False, True)
    assert AcceptedJob.objects.count() == 1


def _someone_waits_on_a_lock() -> bool:
    # A separate connection: the holder's own is inside its transaction.
    observer = connections.create_connection("default")
    try:
        with observer.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            return cursor.fetchone()[0] > 0
    finally:
        observer.close()
