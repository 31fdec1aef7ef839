"""A bulk send followed as a batch in a real browser: its page's progress bar moves to 100 %
while you watch (the page polls; nobody reloads), and Cancel stops the sending at once, what was
sent staying sent. The worker is real; Twilio is the fake, under a slow shared rate limit so a
person (and this test) can watch the bar move."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from jobs.task_names import TaskName
from messaging.models import BulkBatch, WhatsAppMessage
from messaging.whatsapp import DONE_STATUSES
from tests.factories import make_phone
from tests.support.processes import wait_until

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("broker", ["redis"], indirect=True),
]


@pytest.fixture
def platform_settings() -> dict[str, str]:
    return {"RATE_LIMITS": "twilio=5/s"}


def _start_bulk_send(live_platform, *, recipients: int, first: int, marker: str) -> BulkBatch:
    job = live_platform.publisher.send_task(
        TaskName.SEND_BULK_WHATSAPP_NOTIFICATIONS,
        kwargs={
            "recipients": [make_phone(first + n) for n in range(recipients)],
            "body": f"Your vehicle has cleared customs ({marker}).",
        },
        queue="notifications",
    )
    return wait_until(
        lambda: BulkBatch.objects.filter(job_id=job.id).first(),
        timeout=30,
        what=lambda: f"the bulk send's batch row\n{live_platform.worker.tail()}",
    )


def _open_batch(page: Page, live_platform, batch: BulkBatch):
    page.goto(live_platform.url(reverse("admin:messaging_bulkbatch_change", args=[batch.pk])))
    return page.locator("#batch-progress")


def test_a_bulk_sends_progress_bar_moves_to_100_percent_without_a_reload(
    admin_page: Page, live_platform, marker
):
    batch = _start_bulk_send(live_platform, recipients=20, first=1700, marker=marker)
    bar = _open_batch(admin_page, live_platform, batch)
    opened_at = int(bar.get_attribute("data-percent"))
    assert opened_at < 100, "the batch finished before its page opened: nothing to watch"
    navigations = []
    admin_page.on("framenavigated", lambda frame: navigations.append(frame.url))

    expect(bar).to_have_attribute("data-percent", "100", timeout=60_000)
    expect(bar).to_have_attribute("data-state", "done")
    expect(admin_page.locator('[data-field="sent"]')).to_have_text("20")
    assert navigations == []  # the page polled: nobody reloaded it
    rows = WhatsAppMessage.objects.filter(scope=batch.job_id)
    assert rows.filter(status__in=DONE_STATUSES).count() == 20
    assert len(live_platform.twilio.sent()) == 20  # each recipient once


def test_cancel_stops_a_bulk_send_at_once_and_what_was_sent_stays_sent(
    admin_page: Page, live_platform, marker
):
    batch = _start_bulk_send(live_platform, recipients=60, first=1800, marker=marker)
    bar = _open_batch(admin_page, live_platform, batch)
    wait_until(
        lambda: WhatsAppMessage.objects.filter(scope=batch.job_id, status__in=DONE_STATUSES).count() >= 3,
        timeout=30,
        what="a few sends before the cancel",
    )

    admin_page.locator("#batch-cancel").click()

    expect(bar).to_have_attribute("data-state", "cancelled")
    expect(admin_page.locator("#batch-cancel")).to_be_disabled()
    sent_at_cancel = len(live_platform.twilio.sent())
    # Nothing is left waiting to be sent: the rest were skipped, not queued for later.
    wait_until(
        lambda: (
            not WhatsAppMessage.objects.filter(scope=batch.job_id, status__in=["queued", "sending"]).exists()
        ),
        timeout=30,
        what="the cancelled batch to settle",
    )
    rows = WhatsAppMessage.objects.filter(scope=batch.job_id)
    sent = rows.filter(status__in=DONE_STATUSES).count()
    assert 3 <= sent < 60
    assert len(live_platform.twilio.sent()) == sent == sent_at_cancel  # none after the cancel
    # What was sent stays sent, and the page says so.
    admin_page.reload()
    expect(admin_page.locator('[data-field="sent"]')).to_have_text(str(sent))
    expect(bar).to_have_attribute("data-state", "cancelled")
