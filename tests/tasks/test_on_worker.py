"""Business jobs on a real worker and the real Redis broker: the same job delivered twice, a dead
letter replayed, unusable arguments, the bulk send paced by the shared Twilio limit."""

from __future__ import annotations

import json
import re

import pytest
from django_celery_results.models import TaskResult

from billing.models import Invoice
from integrations import ratelimit
from jobs.dead_letters import replay_dead_letters
from jobs.models import DeadLetter
from tasks import deals, notifications, payments, reports
from tests.factories import make_invoice, make_phone
from tests.support.fakes.server import Reply
from tests.support.fakes.twilio import twilio_error
from tests.support.processes import wait_until
from tests.tasks.conftest import accepted_recipients, new_job_id

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_worker")]


def _result(task_id: str, *, containing: str = "") -> dict:
    """The stored result of a finished job (and one that contains `containing`)."""
    row = wait_until(
        lambda: TaskResult.objects.filter(
            task_id=task_id, status="SUCCESS", result__contains=containing
        ).first(),
        timeout=60,
        what=f"job {task_id} to succeed with {containing!r}",
    )
    return json.loads(row.result)


def _dead_letter(task_id: str) -> DeadLetter:
    return wait_until(
        lambda: DeadLetter.objects.filter(task_id=task_id, status="open").first(),
        timeout=30,
        what="a dead letter",
    )


def test_the_same_whatsapp_job_delivered_twice_sends_once(fake_twilio):
    job_id, to = new_job_id(), make_phone()
    kwargs = {"to": to, "body": "Your invoice is ready"}

    notifications.send_whatsapp_message.apply_async(kwargs=kwargs, task_id=job_id)
    first = _result(job_id, containing='"sent"')
    notifications.send_whatsapp_message.apply_async(kwargs=kwargs, task_id=job_id)
    second = _result(job_id, containing='"skipped"')

    assert second["sid"] == first["sid"]
    assert accepted_recipients(fake_twilio)[to] == 1


def test_the_same_payments_job_delivered_twice_steps_each_invoice_through_stripe_once(fake_stripe):
    invoice = make_invoice()
    job_id = new_job_id()

    for _ in range(2):
        payments.process_pending_payments.apply_async(task_id=job_id)
        wait_until(
            lambda: Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PROCESSING,
            timeout=60,
            what="the invoice job, fanned out through the outbox, to run",
        )
    _result(job_id, containing="enqueued")

    assert fake_stripe.idempotency_keys() == [f"invoice-{invoice.pk}-attempt-1-create"]
    assert len(fake_stripe.intents) == 1


def test_unusable_arguments_become_dead_letters_naming_the_argument_at_once(
    fake_vehicle_history, fake_twilio
):
    bad_vin = reports.fetch_vehicle_history.delay(vin="NOT-A-VIN")
    unknown_lead = deals.send_lead_follow_up.delay(lead_id=987654321)
    bad_recipient = notifications.send_bulk_whatsapp_notifications.delay(
        recipients=[make_phone(), "nope"], body="Port strike"
    )

    letters = [_dead_letter(job.id) for job in (bad_vin, unknown_lead, bad_recipient)]

    # The same dotted paths and sentences as the trigger API's details.fields (under "kwargs.").
    assert [letter.exception_message for letter in letters] == [
        "vin: must be a VIN: 17 letters and digits, without I, O or Q",
        "lead_id: no lead with id 987654321",
        "recipients.1: must be an E.164 phone number, e.g. +14165550123",
    ]
    assert {letter.exception_type for letter in letters} == {"jobs.errors.InvalidArgument"}
    assert [letter.attempts for letter in letters] == [1, 1, 1]
    assert fake_vehicle_history.requests == [] and fake_twilio.sent() == []


def test_bulk_job_replayed_from_its_dead_letter_sends_only_what_was_not_sent(fake_twilio):
    recipients = [make_phone() for _ in range(6)]
    create_message = fake_twilio._routes[0]

    def refuse_the_fourth(request, match):
        # Twilio rejects our credentials on the 4th message (rotated token): a permanent failure.
        if len(fake_twilio.sent()) == 4:
            return Reply(401, twilio_error(401, 20003, "Authenticate"))
        return create_message[2](request, match)

    fake_twilio._routes[0] = (create_message[0], create_message[1], refuse_the_fourth)
    result = notifications.send_bulk_whatsapp_notifications.delay(recipients=recipients, body="Port strike")
    letter = _dead_letter(result.id)
    assert len(fake_twilio.messages) == 3

    fake_twilio._routes[0] = create_message
    assert replay_dead_letters([letter], by="test") == 1
    replayed = _result(result.id, containing='"sent"')

    assert replayed == {"recipients": 6, "sent": 3, "skipped": 3, "failed": 0, "resent_after_interruption": 0}
    assert sorted(accepted_recipients(fake_twilio).values()) == [1] * 6


def test_bulk_job_on_a_worker_stays_within_the_twilio_rate_limit(fake_twilio, settings):
    settings.RATE_LIMITS = {"twilio": "10/s"}
    ratelimit.reset("twilio")
    recipients = [make_phone() for _ in range(35)]

    result = notifications.send_bulk_whatsapp_notifications.delay(recipients=recipients, body="Sailing today")

    assert result.get(timeout=90)["sent"] == 35
    arrivals = sorted(r.at for r in fake_twilio.sent())
    busiest_second = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    assert busiest_second <= 10
    assert sorted(accepted_recipients(fake_twilio).values()) == [1] * 35
    assert not re.search(r"\+1416555\d{4}", json.dumps(result.get()))
    ratelimit.reset("twilio")
