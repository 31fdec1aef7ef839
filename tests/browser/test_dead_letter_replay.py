"""A dead letter replayed by ops staff from its admin page, in a real browser: the job runs again
on the real worker and its effects, WhatsApp messages accepted by (fake) Twilio, happen once
each: what the failed run had already sent is not sent again."""

from __future__ import annotations

import json

import pytest
from django_celery_results.models import TaskResult
from playwright.sync_api import Page, expect

from jobs.models import DeadLetter
from jobs.task_names import TaskName
from tests.browser.pages import open_dashboard, success_message
from tests.factories import make_phone
from tests.support.fakes.twilio import REGION_NOT_ENABLED_NUMBER
from tests.support.processes import wait_until

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("broker", ["redis"], indirect=True),
]

BULK = TaskName.SEND_BULK_WHATSAPP_NOTIFICATIONS


def _accepted(twilio, number: str) -> int:
    return sum(m["to"] == f"whatsapp:{number}" for m in list(twilio.messages.values()))


def test_a_dead_letter_replayed_from_its_page_runs_and_its_effects_happen_once(
    admin_page: Page, live_platform, marker
):
    twilio = live_platform.twilio
    first, second = make_phone(1601), make_phone(1602)
    # Twilio refuses the middle recipient's region (21408) until the account allows it: a
    # fixable refusal, so a plain dead letter (integrations/twilio_whatsapp.py), not a failed
    # recipient. The first recipient has had the message by then.
    recipients = [first, REGION_NOT_ENABLED_NUMBER, second]
    job = live_platform.publisher.send_task(
        BULK,
        kwargs={"recipients": recipients, "body": f"The port of Douala reopens Monday ({marker})."},
        queue="notifications",
    )
    wait_until(
        lambda: DeadLetter.objects.filter(task_id=job.id).exists(),
        timeout=30,
        what=lambda: f"the refused bulk send to become a dead letter\n{live_platform.worker.tail()}",
    )
    assert [_accepted(twilio, n) for n in recipients] == [1, 0, 0]

    twilio.refused.pop(REGION_NOT_ENABLED_NUMBER)  # the account now allows that region
    # From the dashboard's "open dead letters by task" to the letter's page.
    open_dashboard(admin_page, live_platform)
    admin_page.locator("#ops-dead-letters").get_by_role("link", name=BULK).click()
    admin_page.locator("#result_list").get_by_role("link", name=BULK).click()
    expect(admin_page.locator(".field-exception_message")).to_contain_text("21408")
    expect(admin_page.locator(".field-status")).to_contain_text("Open")

    admin_page.get_by_role("button", name="Replay").click()

    expect(success_message(admin_page)).to_contain_text("Replayed 1 dead letter(s).")
    expect(admin_page.locator(".field-status")).to_contain_text("Replayed")
    expect(admin_page.get_by_role("button", name="Replay")).to_have_count(0)
    done = wait_until(
        lambda: TaskResult.objects.filter(task_id=job.id, status="SUCCESS").first(),
        timeout=30,
        what=lambda: f"the replayed job to succeed\n{live_platform.worker.tail()}",
    )
    # Everyone has the message once: the first recipient's was not sent again.
    assert [_accepted(twilio, n) for n in recipients] == [1, 1, 1]
    assert len(twilio.sent()) == 4  # first, the refused one, then the replay's two
    result = json.loads(done.result)
    assert (result["sent"], result["skipped"], result["failed"]) == (2, 1, 0), result
    assert DeadLetter.objects.get(task_id=job.id).replay_count == 1
