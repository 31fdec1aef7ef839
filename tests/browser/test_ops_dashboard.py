"""Ops staff in a real browser: log in to admin, open the operations dashboard (within its time
bound, everything fetched from our own server), pause a queue from it and resume it, with a
real worker on the Redis broker showing the effect."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django_celery_results.models import TaskResult
from playwright.sync_api import Page, expect

from jobs.operations.ops_dashboard import LOAD_DEADLINE_SECONDS
from jobs.queues import QUEUE_NAMES
from jobs.task_names import TaskName
from tests.browser.pages import (
    expect_throughput_chart,
    fill_login_form,
    listed_worker,
    open_dashboard,
    queue_row,
    queue_waiting,
    reload_until,
    success_message,
    worker_queues,
)
from tests.support.probe.models import ProbeEffect, ProbeExecution
from tests.support.processes import wait_until
from tests.support.two_factor import current_code

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("broker", ["redis"], indirect=True),
]


def test_staff_user_logs_in_and_reaches_the_dashboard_from_the_admin_index(
    page: Page, live_platform, staff_user
):
    page.goto(live_platform.url("/admin/"))
    expect(page).to_have_url(live_platform.url("/admin/login/?next=/admin/"))

    fill_login_form(page, staff_user.username, "not the password", current_code(staff_user.totp_key))
    expect(page.locator(".errornote")).to_contain_text("correct username, password and authentication code")

    fill_login_form(page, staff_user.username, staff_user.password, current_code(staff_user.totp_key))
    expect(page).to_have_url(live_platform.url("/admin/"))
    page.get_by_role("link", name="Operations dashboard").click()
    expect(page).to_have_url(live_platform.url("/admin/ops/"))
    expect(page.locator("#ops-queues")).to_be_visible()


def test_dashboard_loads_within_its_bound_from_our_server_only(admin_page: Page, live_platform):
    origins = set()
    admin_page.on("request", lambda request: origins.add(_origin(request.url)))
    # One job through the worker, so the chart has something to count.
    job = live_platform.publisher.send_task(TaskName.NOOP)
    wait_until(
        lambda: TaskResult.objects.filter(task_id=job.id, status="SUCCESS").exists(),
        timeout=30,
        what="the noop job to succeed",
    )

    seconds = open_dashboard(admin_page, live_platform)

    print(
        f"\nops dashboard in the browser: {seconds:.2f} s to its last byte (bound {LOAD_DEADLINE_SECONDS} s)"
    )
    assert seconds < LOAD_DEADLINE_SECONDS, f"the dashboard took {seconds:.2f} s"
    # The worker answered: it is listed with the queues it consumes (every platform queue).
    worker = listed_worker(admin_page, "browser-worker")
    assert sorted(worker_queues(admin_page)[worker]) == sorted(QUEUE_NAMES)
    for queue in QUEUE_NAMES:
        expect(queue_row(admin_page, queue)).to_contain_text("consuming")
    expect(admin_page.locator("#ops-beat")).to_be_visible()
    expect_throughput_chart(admin_page, succeeded_at_least=1)
    # Styles, scripts and images included: nothing fetched from anywhere else.
    assert origins == {live_platform.url("")}, origins


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def test_pause_then_resume_a_queue_from_the_dashboard(admin_page: Page, live_platform, marker):
    open_dashboard(admin_page, live_platform)
    worker = listed_worker(admin_page, "browser-worker")

    queue_row(admin_page, "notifications").get_by_role("button", name="Pause").click()

    expect(success_message(admin_page)).to_contain_text(f"Paused notifications (was consumed by {worker})")
    expect(queue_row(admin_page, "notifications")).to_contain_text("paused")
    # The worker has let go of the queue (it answers for the queues it consumes).
    reload_until(
        admin_page,
        lambda page: "notifications" not in worker_queues(page).get(worker, ["notifications"]),
        timeout=15,
        what="the worker to stop consuming notifications",
    )

    publisher = live_platform.publisher
    publisher.send_task("probe.effect", kwargs={"marker": f"{marker}-held"}, queue="notifications")
    # A job on a queue still consumed, sent after it: once it has run, the idle worker would
    # long have taken the held job, had it still been consuming notifications.
    publisher.send_task("probe.effect", kwargs={"marker": f"{marker}-after"}, queue="default")
    wait_until(
        lambda: ProbeEffect.objects.filter(marker=f"{marker}-after").exists(),
        timeout=30,
        what=lambda: f"the default queue's job to run\n{live_platform.worker.tail()}",
    )
    assert not ProbeExecution.objects.filter(marker=f"{marker}-held").exists()
    admin_page.reload()
    assert queue_waiting(admin_page, "notifications") == 1  # still in the broker, never taken
    expect(queue_row(admin_page, "notifications")).to_contain_text("paused")

    queue_row(admin_page, "notifications").get_by_role("button", name="Resume").click()

    expect(success_message(admin_page)).to_contain_text(f"Resumed notifications on {worker}")
    wait_until(
        lambda: ProbeEffect.objects.filter(marker=f"{marker}-held").count() == 1,
        timeout=30,
        what=lambda: f"the held job to run after resume\n{live_platform.worker.tail()}",
    )
    reload_until(
        admin_page,
        lambda page: (
            queue_waiting(page, "notifications") == 0
            and "notifications" in worker_queues(page).get(worker, [])
        ),
        timeout=15,
        what="the dashboard to show notifications consumed again and empty",
    )
    expect(queue_row(admin_page, "notifications")).to_contain_text("consuming")
    assert ProbeExecution.objects.filter(marker=f"{marker}-held").count() == 1
