"""The operations dashboard with real workers: it loads in bounded time when a worker does not
answer, pausing a queue stops its consumption (even by a worker started later), resuming
restarts it, and dead letters are replayed in bulk."""

import signal
import time

import pytest
from django.urls import reverse

from jobs.models import DeadLetter
from jobs.operations import queue_ops
from jobs.operations.ops_dashboard import LOAD_DEADLINE_SECONDS, workers_and_queues
from tests.conftest import broker_client
from tests.support.probe.models import ProbeEffect, ProbeExecution
from tests.support.processes import wait_until
from tests.support.two_factor import log_in_staff

pytestmark = pytest.mark.processes


def _worker_named(prefix: str) -> str:
    return wait_until(
        lambda: next((name for name in workers_and_queues() if name.startswith(f"{prefix}@")), None),
        timeout=20,
        what=f"worker {prefix} to answer",
    )


def test_dashboard_loads_in_bounded_time_with_a_worker_that_does_not_answer(admin_client, ops_workers):
    ops_workers("answering", "default")
    frozen = ops_workers("frozen", "reports")
    _worker_named("answering"), _worker_named("frozen")

    frozen.kill(signal.SIGSTOP)  # alive but silent: the inspect broadcast gets no reply from it
    try:
        started = time.monotonic()
        response = admin_client.get(reverse("ops_dashboard"))
        elapsed = time.monotonic() - started
    finally:
        frozen.kill(signal.SIGCONT)

    assert response.status_code == 200
    assert elapsed < LOAD_DEADLINE_SECONDS, elapsed
    page = response.content.decode()
    assert "answering@" in page and "frozen@" not in page
    for queue in queue_ops.platform_queue_names():
        assert queue in page


def test_admin_index_links_to_the_dashboard(admin_client, ops_broker):
    assert reverse("ops_dashboard") in admin_client.get(reverse("admin:index")).content.decode()


def _consumes(worker: str, queue: str) -> bool:
    return queue in workers_and_queues().get(worker, [])


def test_pause_stops_consumption_of_a_queue_and_resume_restarts_it(
    admin_client, ops_workers, ops_broker, marker
):
    ops_workers("pausable", "default,notifications")
    worker = _worker_named("pausable")
    publisher = broker_client(ops_broker.url)
    dashboard = reverse("ops_dashboard")

    assert admin_client.post(dashboard, {"action": "pause", "queue": "notifications"}).status_code == 302
    wait_until(lambda: not _consumes(worker, "notifications"), timeout=10, what="the pause to apply")
    # One job through the default queue, so the worker's next poll of Redis is one that began
    # after the pause.
    publisher.send_task("probe.effect", kwargs={"marker": f"{marker}-a"}, queue="default")
    wait_until(lambda: ProbeEffect.objects.filter(marker=f"{marker}-a").exists(), timeout=20, what="job a")

    publisher.send_task("probe.effect", kwargs={"marker": f"{marker}-held"}, queue="notifications")
    publisher.send_task("probe.effect", kwargs={"marker": f"{marker}-b"}, queue="default")
    wait_until(lambda: ProbeEffect.objects.filter(marker=f"{marker}-b").exists(), timeout=20, what="job b")

    # The worker is alive and consuming default, yet the notifications job waits in Redis.
    assert not ProbeExecution.objects.filter(marker=f"{marker}-held").exists()
    stats = {queue.name: queue for queue in queue_ops.queue_stats()}
    assert stats["notifications"].depth == 1 and stats["notifications"].paused
    assert "paused" in admin_client.get(dashboard).content.decode()

    # A worker started while the queue is paused leaves it alone too.
    ops_workers("latecomer", "notifications")
    latecomer = _worker_named("latecomer")
    wait_until(lambda: not _consumes(latecomer, "notifications"), timeout=10, what="the latecomer to skip it")
    assert queue_ops.queue_stats()[1].depth == 1

    assert admin_client.post(dashboard, {"action": "resume", "queue": "notifications"}).status_code == 302
    wait_until(
        lambda: ProbeEffect.objects.filter(marker=f"{marker}-held").exists(),
        timeout=20,
        what="the held job to run after resume",
    )
    assert _consumes(worker, "notifications") and _consumes(latecomer, "notifications")
    assert not queue_ops.paused_queues()


def test_resume_reaches_a_worker_that_missed_the_pause_inspect_and_no_other(ops_workers, ops_broker):
    busy = ops_workers("busy", "default,notifications")
    ops_workers("dedicated", "default")
    busy_name, dedicated_name = _worker_named("busy"), _worker_named("dedicated")

    busy.kill(signal.SIGSTOP)  # too busy to answer the pause's inspect: nobody remembers it
    try:
        assert queue_ops.pause_queue(queue="notifications") == []
    finally:
        busy.kill(signal.SIGCONT)
    # The stop was broadcast to every worker: it reaches this one once it runs again.
    wait_until(lambda: not _consumes(busy_name, "notifications"), timeout=10, what="the pause to apply")

    queue_ops.resume_queue(queue="notifications")

    wait_until(lambda: _consumes(busy_name, "notifications"), timeout=10, what="the resume to reach it")
    assert not _consumes(dedicated_name, "notifications")
    assert not queue_ops.paused_queues()


# Replay publishes through the web process's own Celery app, configured once per process for one
# broker (here Redis); it is Celery's publish, nothing broker-specific of ours. That broker is
# REDIS_URL's, not ops_broker's (the app is configured when the session's live worker starts, before
# ops_broker points the settings elsewhere): the replays run on `live_worker`, which consumes it.
@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_replay_dead_letters_in_bulk_for_one_task(admin_client, ops_workers, ops_broker, live_worker, marker):
    ops_workers("replayer", "default")
    publisher = broker_client(ops_broker.url)
    failed = [
        publisher.send_task("probe.effect_then_fail", kwargs={"marker": f"{marker}-{n}"}, queue="default").id
        for n in range(3)
    ]
    wait_until(
        lambda: DeadLetter.objects.filter(task_id__in=failed).count() == 3,
        timeout=30,
        what="three dead letters",
    )

    response = admin_client.post(
        reverse("ops_dashboard"), {"action": "replay_dead_letters", "task": "probe.effect_then_fail"}
    )

    assert response.status_code == 302
    # Replayed under their own ids, they succeed; each effect still happened once.
    wait_until(
        lambda: ProbeExecution.objects.filter(marker__startswith=f"{marker}-").count() == 6,
        timeout=30,
        what="the replays to run",
    )
    assert set(DeadLetter.objects.filter(task_id__in=failed).values_list("status", flat=True)) == {"replayed"}
    assert ProbeEffect.objects.filter(marker__startswith=f"{marker}-").count() == 3


def test_actions_need_the_change_dead_letter_permission(client, django_user_model, ops_broker):
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    log_in_staff(client, viewer, password="x")

    client.post(reverse("ops_dashboard"), {"action": "pause", "queue": "notifications"})

    assert not queue_ops.paused_queues()
