"""What the browser tests do and read on admin pages, by what ops staff see: the login form, the
operations dashboard's tables (platform/jobs/operations/templates/admin/ops/dashboard.html), admin
messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from playwright.sync_api import Locator, Page, expect

from jobs.queues import QUEUE_NAMES
from tests.support.processes import wait_until
from tests.support.two_factor import current_code

if TYPE_CHECKING:
    from tests.browser.conftest import LivePlatform, StaffUser

DASHBOARD_PATH = "/admin/ops/"


def log_in(page: Page, platform: LivePlatform, user: StaffUser) -> None:
    """Admin's login form, filled and sent as a person would, with the code their authenticator
    app shows now; returns on the admin index."""
    page.goto(platform.url("/admin/login/?next=/admin/"))
    fill_login_form(page, user.username, user.password, current_code(user.totp_key))
    expect(page).to_have_url(platform.url("/admin/"))
    expect(page.locator("#user-tools")).to_contain_text(user.username.upper(), ignore_case=True)


def fill_login_form(page: Page, username: str, password: str, code: str = "") -> None:
    """Admin's login form (staff_auth/forms.py): username, password, authentication code; sent."""
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Authentication code").fill(code)
    page.get_by_role("button", name="Log in").click()


def success_message(page: Page) -> Locator:
    """Admin's green message after an action (django.contrib.messages)."""
    return page.locator("ul.messagelist li.success")


# --- The operations dashboard ---------------------------------------------------------------


def open_dashboard(page: Page, platform: LivePlatform) -> float:
    """Open /admin/ops/; returns the seconds from navigation start to the last byte of the page,
    as the browser measured them (Navigation Timing)."""
    page.goto(platform.url(DASHBOARD_PATH))
    expect(page.locator("#ops-queues")).to_be_visible()
    return page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " return (n.responseEnd - n.startTime) / 1000; }"
    )


def queue_row(page: Page, queue: str) -> Locator:
    """The dashboard's row for `queue` in the Queues table."""
    return page.locator("#ops-queues tr").filter(has=page.get_by_role("cell", name=queue, exact=True))


def queue_waiting(page: Page, queue: str) -> int:
    """The queue's "Waiting" column (the second)."""
    return int(queue_row(page, queue).locator("td").nth(1).inner_text())


def worker_queues(page: Page) -> dict[str, list[str]]:
    """The "Workers online" table: worker name -> the queues it consumes."""
    workers = {}
    for row in page.locator("#ops-workers tr").all():
        cells = row.locator("td").all_inner_texts()
        if len(cells) == 2:
            workers[cells[0]] = [q for q in cells[1].split(", ") if q]
    return workers


def listed_worker(page: Page, prefix: str, *, timeout: float = 20) -> str:
    """The full name of the worker `prefix@...` in "Workers online", reloading until it is listed
    (a worker that does not answer within the dashboard's second is left out of that load)."""

    def listed(page: Page) -> str | None:
        return next((name for name in worker_queues(page) if name.startswith(f"{prefix}@")), None)

    return listed(page) or reload_until(page, listed, timeout=timeout, what=f"worker {prefix} to be listed")


def reload_until(page: Page, condition: Callable[[Page], object], *, timeout: float, what: str):
    """Reload the page until `condition(page)` holds (what ops staff do while waiting on a worker)."""

    def reloaded_and_holds():
        page.reload()
        return condition(page)

    return wait_until(reloaded_and_holds, timeout=timeout, interval=0.2, what=what)


def expect_throughput_chart(page: Page, *, succeeded_at_least: int) -> None:
    """The dashboard's throughput chart: drawn server-side as inline SVG above the tables, one
    series per queue and outcome, counting at least `succeeded_at_least` jobs succeeded."""
    chart = page.locator("svg#throughput-chart")
    expect(chart).to_be_visible()
    expect(chart.locator("rect, path, polyline, line").first).to_be_attached()
    assert chart.bounding_box()["y"] < page.locator("#ops-queues").bounding_box()["y"]
    series = chart.locator("g.series")
    queues = {series.nth(n).get_attribute("data-queue") for n in range(series.count())}
    assert queues == set(QUEUE_NAMES), queues
    succeeded = chart.locator('g.series[data-outcome="succeeded"]')
    total = sum(int(succeeded.nth(n).get_attribute("data-total")) for n in range(succeeded.count()))
    assert total >= succeeded_at_least, total


# --- Flower ---------------------------------------------------------------------------------


def open_flower_broker_page(page: Page, root: str) -> None:
    """Flower's home, then its "Broker" tab, as ops staff reach it."""
    page.goto(root + "/")
    page.get_by_role("link", name="Broker", exact=True).click()
    expect(page).to_have_url(root + "/broker")


def flower_queue_lengths(page: Page) -> dict[str, str]:
    """Flower's Broker page (flower/templates/broker.html): queue name -> its "Messages" cell, as
    shown (a dash where Flower has no number). Empty when the page shows no queue table."""
    lengths = {}
    for row in page.locator("#queue-table tbody tr").all():
        cells = row.locator("td").all_inner_texts()
        if len(cells) >= 2:
            lengths[cells[0].strip()] = cells[1].strip()
    return lengths
