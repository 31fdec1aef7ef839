"""A dead letter replayed by ops staff from its admin page, in a real browser: the job runs again
on the real worker and its effect, a WhatsApp message accepted by (fake) Twilio, happens once."""

from __future__ import annotations

import pytest
from django_celery_results.models import TaskResult
from playwright.sync_api import Page, expect

from jobs.models import DeadLetter
from jobs.task_names import TaskName
from messaging.models import WhatsAppMessage
from tests.browser.pages import open_dashboard, success_message
from tests.factories import make_phone
from tests.support.fakes.twilio import twilio_error
from tests.support.processes import wait_until

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("broker", ["redis"], indirect=True),
]

# Twilio refuses the region until the account allows it: a fixable refusal, so a plain dead
# letter (integrations/twilio_whatsapp.py), replayed once the account is fixed.
REGION_REFUSED = twilio_error(
    400, 21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number"
)


def test_a_dead_letter_replayed_from_its_page_runs_and_its_effect_happens_once(
    admin_page: Page, live_platform, marker
):
    twilio = live_platform.twilio
    to = make_phone(1608)
    twilio.fail_next(400, REGION_REFUSED, path_contains="/Messages.json")
    job = live_platform.publisher.send_task(
        TaskName.SEND_WHATSAPP_MESSAGE,
        kwargs={"to": to, "body": f"Your car has shipped ({marker})."},
        queue="notifications",
    )
    wait_until(
        lambda: DeadLetter.objects.filter(task_id=job.id).exists(),
        timeout=30,
        what=lambda: f"the refused send to become a dead letter\n{live_platform.worker.tail()}",
    )
    assert not twilio.messages  # refused: nothing sent yet

    # From the dashboard's "open dead letters by task" to the letter's page.
    open_dashboard(admin_page, live_platform)
    admin_page.locator("#ops-dead-letters").get_by_role("link", name=TaskName.SEND_WHATSAPP_MESSAGE).click()
    admin_page.locator("#result_list").get_by_role("link", name=TaskName.SEND_WHATSAPP_MESSAGE).click()
    expect(admin_page.locator(".field-exception_message")).to_contain_text("21408")
    expect(admin_page.locator(".field-status")).to_contain_text("Open")

    admin_page.get_by_role("button", name="Replay").click()

    expect(success_message(admin_page)).to_contain_text("Replayed 1 dead letter(s).")
    expect(admin_page.locator(".field-status")).to_contain_text("Replayed")
    expect(admin_page.get_by_role("button", name="Replay")).to_have_count(0)
    wait_until(
        lambda: TaskResult.objects.filter(task_id=job.id, status="SUCCESS").exists(),
        timeout=30,
        what=lambda: f"the replayed job to succeed\n{live_platform.worker.tail()}",
    )
    accepted = [m for m in twilio.messages.values() if m["to"] == f"whatsapp:{to}"]
    assert len(accepted) == 1, accepted
    assert len(twilio.sent()) == 2  # the refused attempt, then the replay's: no third
    message = WhatsAppMessage.objects.get(job_id=job.id)
    assert message.status == WhatsAppMessage.Status.SENT and message.twilio_sid == accepted[0]["sid"]
    assert DeadLetter.objects.get(task_id=job.id).replay_count == 1
