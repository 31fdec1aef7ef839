"""Flower in the admin (docs/security.md, "Flower"): ops staff reach Flower at /admin/flower/ behind
the admin's login, both factors, without ever typing Flower's own password, and its pages work
there as they do on Flower's port, under the site's Content-Security-Policy.

Real parts: the web process (runserver) with FLOWER_URL naming a real `celery -A tasks flower`
(basic auth, flowerconfig.py) on the same private Redis broker as the platform's worker, Chromium
through Playwright. The browser is given no credentials for Flower: a request that reached Flower
without the web process's would be answered 401."""

from __future__ import annotations

import re
import socket
from urllib.parse import quote

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import FLOWER_CREDENTIALS
from tests.browser.pages import flower_queue_lengths, log_in, reload_until
from tests.browser.policy_watch import watch
from tests.support.processes import wait_until

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("broker", ["redis"], indirect=True),
]


@pytest.fixture
def platform_settings(live_flower) -> dict[str, str]:
    """The web process asks this test's Flower, with its credentials (the browser has none)."""
    return {"FLOWER_URL": live_flower.root, "FLOWER_BASIC_AUTH": ":".join(FLOWER_CREDENTIALS)}


def test_staff_reach_flower_through_the_admin_login_and_its_pages_and_buttons_work_under_the_policy(
    page: Page, live_flower, live_platform, staff_user
):
    seen = watch(page, live_platform.url(""))
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    # Not signed in: the admin's login page, which comes back to Flower.
    page.goto(live_platform.url("/admin/flower/"))
    expect(page).to_have_url(re.compile(re.escape(live_platform.url("/admin/login/?next=/admin/flower/"))))

    log_in(page, live_platform, staff_user)
    page.get_by_role("link", name="Flower", exact=True).click()
    expect(page).to_have_url(live_platform.url("/admin/flower/"))
    live_flower.known_worker("browser-worker")
    worker = f"browser-worker@{socket.gethostname()}"  # live_platform's worker (-n name@%h)
    # The Workers table is filled by Flower's script (GET /admin/flower/workers?json=1).
    reload_until(
        page,
        lambda page: _shows(_worker_link(page, worker)),
        timeout=60,
        what=lambda: f"Flower's Workers page to list {worker}",
    )

    # Flower's own links and scripts stay under the prefix: its tabs, a worker's page.
    page.get_by_role("link", name="Tasks", exact=True).click()
    expect(page).to_have_url(live_platform.url("/admin/flower/tasks"))
    expect(page.locator("#tasks-table")).to_be_visible()
    page.get_by_role("link", name="Broker", exact=True).click()
    expect(page).to_have_url(live_platform.url("/admin/flower/broker"))
    reload_until(
        page,
        lambda page: "default" in flower_queue_lengths(page),
        timeout=30,
        what=lambda: f"the Broker page to list the queues: {flower_queue_lengths(page)}",
    )
    page.get_by_role("link", name="Workers", exact=True).click()
    _worker_link(page, worker).click()
    expect(page).to_have_url(live_platform.url(f"/admin/flower/worker/{quote(worker)}"))

    # A button that changes something: a POST through the admin, made by Flower's own script.
    page.locator("#pool-size").fill("1")
    with page.expect_response(lambda r: "/api/worker/pool/grow/" in r.url) as grown:
        page.locator("#worker-pool-grow").click()
    assert grown.value.status == 200, grown.value.text()
    expect(page.locator(".toast-body")).to_contain_text(f"Growing '{worker}' worker's pool by 1")
    logged = f"flower: POST /api/worker/pool/grow/{worker} by {staff_user.username}"
    wait_until(
        lambda: live_platform.web.process.saw(logged),
        timeout=10,
        what=lambda: f"the web process to log {logged!r}\n{live_platform.web.process.tail()}",
    )

    assert failed == []
    assert seen.foreign == [], "the browser asked Flower's own port, or another origin"
    assert seen.responses_without_header() == []
    assert seen.violations == []
    assert seen.console == []


def _worker_link(page: Page, worker: str) -> Locator:
    return page.get_by_role("link", name=f"Worker {worker}", exact=True)  # Flower's aria-label


def _shows(locator: Locator) -> bool:
    try:
        expect(locator).to_be_visible(timeout=5_000)
    except AssertionError:
        return False
    return True
