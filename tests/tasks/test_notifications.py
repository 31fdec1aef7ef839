"""WhatsApp jobs run as task bodies: each recipient of a job gets its message once."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.services import record_audit
from integrations import ratelimit
from integrations.errors import InvalidRecipient, PermanentError, RateLimited
from jobs.errors import DeferReason, Deferred, InvalidArgument
from jobs.models import DeadLetter
from messaging.bulk import BulkPaused
from messaging.models import WhatsAppMessage
from messaging.whatsapp import AMBIGUOUS_RESENDS, REFUSED_NUMBER, send_whatsapp_once
from tasks import notifications
from tests.factories import make_phone, make_vehicle
from tests.support.fakes.twilio import INVALID_NUMBER, twilio_error
from tests.tasks.conftest import accepted_recipients, new_job_id, run_body, run_job

pytestmark = pytest.mark.django_db

CONTENT_SID = "HX" + "0123456789abcdef" * 2


def test_text_is_sent_through_twilio_and_recorded_with_its_sid(fake_twilio):
    to = make_phone()

    result = run_body(notifications.send_whatsapp_message, to=to, body="Your RAV4 has shipped")

    [request] = fake_twilio.sent()
    assert request.form["To"] == f"whatsapp:{to}" and request.form["Body"] == "Your RAV4 has shipped"
    message = WhatsAppMessage.objects.get()
    assert message.status == WhatsAppMessage.Status.SENT and message.twilio_sid == result["sid"]
    assert to not in json.dumps(result)  # no phone numbers in results


def test_same_text_job_run_twice_sends_once(fake_twilio):
    job_id, to = new_job_id(), make_phone()

    first = run_body(notifications.send_whatsapp_message, job_id=job_id, to=to, body="Hello")
    second = run_body(notifications.send_whatsapp_message, job_id=job_id, to=to, body="Hello")

    assert (first["status"], second["status"]) == ("sent", "skipped")
    assert second["sid"] == first["sid"]
    assert len(fake_twilio.sent()) == 1


def test_two_jobs_with_equal_arguments_are_two_messages(fake_twilio):
    to = make_phone()
    run_body(notifications.send_whatsapp_message, to=to, body="Hello")
    run_body(notifications.send_whatsapp_message, to=to, body="Hello")

    assert accepted_recipients(fake_twilio)[to] == 2


def test_template_is_sent_with_content_sid_and_variables_once_per_job(fake_twilio):
    job_id, to = new_job_id(), make_phone()

    for _ in range(2):
        run_body(
            notifications.send_whatsapp_template,
            job_id=job_id,
            to=to,
            template=CONTENT_SID,
            variables={"1": "Corolla", "2": "2019"},
        )

    [request] = fake_twilio.sent()
    assert request.form["ContentSid"] == CONTENT_SID
    assert json.loads(request.form["ContentVariables"]) == {"1": "Corolla", "2": "2019"}


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"to": "4165550123", "body": "x"}, "to"),
        ({"to": "whatsapp:+14165550123", "body": "x"}, "to"),
        ({"to": "+14165550123", "body": "  "}, "body"),
        ({"to": "+14165550123", "body": "x", "vehicle_id": 987654321}, "vehicle_id"),
        ({"to": "+14165550123", "body": "x", "vehicle_id": "7"}, "vehicle_id"),
        ({"to": "+14165550123", "body": "x", "colour": "red"}, "colour"),
    ],
)
def test_unusable_arguments_dead_letter_the_job_naming_the_argument_and_send_nothing(
    fake_twilio, kwargs, argument
):
    job_id = new_job_id()
    with pytest.raises(InvalidArgument) as raised:
        run_job(notifications.send_whatsapp_message, job_id=job_id, **kwargs)

    assert list(raised.value.fields) == [argument]
    letter = DeadLetter.objects.get(task_id=job_id)
    assert letter.exception_message.startswith(f"{argument}: ")
    assert (letter.exception_type, letter.attempts) == ("jobs.errors.InvalidArgument", 1)
    assert fake_twilio.sent() == []


def test_template_with_a_malformed_content_sid_fails_naming_template(fake_twilio):
    with pytest.raises(InvalidArgument, match="^template: must be a Twilio Content SID"):
        run_job(notifications.send_whatsapp_template, to=make_phone(), template="welcome", variables={})
    assert fake_twilio.sent() == []


def test_template_variables_are_text(fake_twilio):
    with pytest.raises(InvalidArgument) as raised:
        run_job(
            notifications.send_whatsapp_template, to=make_phone(), template=CONTENT_SID, variables={"1": 2}
        )
    assert list(raised.value.fields) == ["variables.1"]


def test_message_about_a_vehicle_deleted_meanwhile_is_a_no_op(fake_twilio):
    vehicle = make_vehicle()
    record_audit(actor="test", action="create", obj=vehicle)
    vehicle_id = vehicle.pk
    vehicle.delete()

    result = run_body(notifications.send_whatsapp_message, to=make_phone(), body="x", vehicle_id=vehicle_id)

    assert result["status"] == "skipped"
    assert fake_twilio.sent() == []


def test_number_twilio_refuses_fails_permanently_and_is_not_tried_again(fake_twilio):
    job_id = new_job_id()
    for _ in range(2):
        with pytest.raises(InvalidArgument) as raised:
            run_body(notifications.send_whatsapp_message, job_id=job_id, to=INVALID_NUMBER, body="x")
        assert raised.value.fields == {"to": REFUSED_NUMBER}

    assert len(fake_twilio.sent()) == 1
    assert WhatsAppMessage.objects.get().status == WhatsAppMessage.Status.FAILED


def _region_not_enabled(fake_twilio, settings):
    fake_twilio.fail_next(400, twilio_error(400, 21408, "Permission to send to this region is not enabled"))


def _malformed_sender(fake_twilio, settings):
    settings.TWILIO_WHATSAPP_FROM = "Acme Motors"


def _fixed(fake_twilio, settings):
    settings.TWILIO_WHATSAPP_FROM = fake_twilio.settings()["TWILIO_WHATSAPP_FROM"]


@pytest.mark.parametrize(
    "break_account",
    [_region_not_enabled, _malformed_sender],
    ids=["region-not-enabled-21408", "malformed-TWILIO_WHATSAPP_FROM"],
)
def test_an_account_or_sender_problem_dead_letters_the_job_and_its_replay_sends(
    fake_twilio, settings, break_account
):
    # Our configuration, not the recipient: the row must stay sendable for the replay.
    job_id, to = new_job_id(), make_phone()
    break_account(fake_twilio, settings)

    with pytest.raises(PermanentError) as raised:
        run_body(notifications.send_whatsapp_message, job_id=job_id, to=to, body="x")
    assert not isinstance(raised.value, InvalidRecipient)
    assert WhatsAppMessage.objects.get().status == WhatsAppMessage.Status.QUEUED

    _fixed(fake_twilio, settings)  # the account now allows the region / the sender is corrected
    assert run_body(notifications.send_whatsapp_message, job_id=job_id, to=to, body="x")["status"] == "sent"
    assert accepted_recipients(fake_twilio)[to] == 1


def test_sends_ask_twilio_for_delivery_statuses_at_the_configured_url(fake_twilio, settings):
    settings.TWILIO_STATUS_CALLBACK_URL = "https://ops.example.com/webhooks/twilio/status"

    run_body(notifications.send_whatsapp_message, to=make_phone(), body="x")

    [request] = fake_twilio.sent()
    assert request.form["StatusCallback"] == "https://ops.example.com/webhooks/twilio/status"


def test_twilio_outage_releases_the_message_so_the_retry_sends_it(fake_twilio):
    job_id, to = new_job_id(), make_phone()
    fake_twilio.fail_next(503, {"code": 20503, "message": "Service unavailable", "status": 503})

    with pytest.raises(Exception) as raised:
        run_body(notifications.send_whatsapp_message, job_id=job_id, to=to, body="x")
    assert type(raised.value).__name__ == "TransientError"
    assert WhatsAppMessage.objects.get().status == WhatsAppMessage.Status.QUEUED

    assert run_body(notifications.send_whatsapp_message, job_id=job_id, to=to, body="x")["status"] == "sent"
    assert accepted_recipients(fake_twilio)[to] == 1


def test_message_being_sent_by_another_execution_is_not_sent_again_meanwhile(fake_twilio):
    job_id, to = new_job_id(), make_phone()
    WhatsAppMessage.objects.create(
        to=to, body="x", scope=job_id, idempotency_key="message", status=WhatsAppMessage.Status.SENDING
    )

    with pytest.raises(Deferred) as raised:
        send_whatsapp_once(scope=job_id, key="message", to=to, body="x")

    assert raised.value.reason == DeferReason.HELD_ELSEWHERE
    assert fake_twilio.sent() == []


def test_message_left_sending_by_a_crash_is_resent_once_its_lease_lapsed_and_counted(fake_twilio):
    job_id, to = new_job_id(), make_phone()
    message = WhatsAppMessage.objects.create(
        to=to, body="x", scope=job_id, idempotency_key="message", status=WhatsAppMessage.Status.SENDING
    )
    WhatsAppMessage.objects.filter(pk=message.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    before = AMBIGUOUS_RESENDS._value.get()

    outcome = send_whatsapp_once(scope=job_id, key="message", to=to, body="x")
    again = send_whatsapp_once(scope=job_id, key="message", to=to, body="x")

    assert (outcome.status, outcome.resent_after_ambiguity, again.status) == ("sent", True, "skipped")
    assert AMBIGUOUS_RESENDS._value.get() == before + 1
    assert len(fake_twilio.sent()) == 1


# --- bulk ------------------------------------------------------------------------------------
def test_bulk_sends_each_recipient_once_and_reports_sent_skipped_failed(fake_twilio):
    job_id = new_job_id()
    recipients = [make_phone() for _ in range(12)] + [INVALID_NUMBER]

    first = run_body(
        notifications.send_bulk_whatsapp_notifications,
        job_id=job_id,
        recipients=recipients + recipients[:3],
        body="Port closed Monday",
    )
    second = run_body(
        notifications.send_bulk_whatsapp_notifications,
        job_id=job_id,
        recipients=recipients,
        body="Port closed Monday",
    )

    assert first == {"recipients": 13, "sent": 12, "skipped": 0, "failed": 1, "resent_after_interruption": 0}
    assert second == {"recipients": 13, "sent": 0, "skipped": 12, "failed": 1, "resent_after_interruption": 0}
    counts = accepted_recipients(fake_twilio)
    assert all(counts[number] == 1 for number in recipients[:12])
    assert len(fake_twilio.sent()) == 13  # the refused number was tried once, not again


def test_bulk_with_a_malformed_number_fails_naming_it_by_its_index_and_sends_nothing(fake_twilio):
    with pytest.raises(InvalidArgument) as raised:
        run_job(
            notifications.send_bulk_whatsapp_notifications,
            recipients=[make_phone(), "0044 20 7946 0958"],
            body="x",
        )
    assert raised.value.fields == {"recipients.1": "must be an E.164 phone number, e.g. +14165550123"}
    assert fake_twilio.sent() == []
    assert not WhatsAppMessage.objects.exists()


def test_bulk_recipients_are_capped_by_the_setting_counting_the_list_as_given(fake_twilio, settings):
    settings.API_MAX_BULK_RECIPIENTS = 3
    numbers = [make_phone() for _ in range(3)]

    with pytest.raises(InvalidArgument, match="^recipients: must name at most 3 recipients, got 4"):
        run_job(notifications.send_bulk_whatsapp_notifications, recipients=[*numbers, numbers[0]], body="x")
    assert run_job(notifications.send_bulk_whatsapp_notifications, recipients=numbers, body="x")["sent"] == 3


def test_bulk_paused_by_the_rate_limit_carries_its_totals_to_the_resumed_execution(fake_twilio, settings):
    settings.RATE_LIMITS = {"twilio": "4/m"}
    ratelimit.reset("twilio")
    task = notifications.send_bulk_whatsapp_notifications
    job_id, recipients = new_job_id(), [make_phone() for _ in range(6)]

    task.push_request(id=job_id, called_directly=False, retries=0)
    try:
        with pytest.raises(BulkPaused) as paused:  # the task base reschedules the job (BulkSendTask)
            task.run(recipients=recipients, body="x")
        assert isinstance(paused.value.cause, RateLimited)
        carried = paused.value.run.as_dict()
    finally:
        task.pop_request()
    assert carried["recipients"] == 6
    assert len(fake_twilio.sent()) == 4

    settings.RATE_LIMITS = {}
    task.push_request(id=job_id, called_directly=False, retries=0, **{notifications.BULK_RUN_HEADER: carried})
    try:
        result = task.run(recipients=recipients, body="x")
    finally:
        task.pop_request()

    assert result == {"recipients": 6, "sent": 6, "skipped": 0, "failed": 0, "resent_after_interruption": 0}
    assert sorted(accepted_recipients(fake_twilio).values()) == [1] * 6
    ratelimit.reset("twilio")


def test_bulk_on_complete_must_name_a_registered_batch_callback(fake_twilio):
    with pytest.raises(InvalidArgument) as raised:
        run_job(
            notifications.send_bulk_whatsapp_notifications,
            recipients=[make_phone()],
            body="x",
            on_complete="tasks.maintenance.noop",
        )
    assert set(raised.value.fields) == {"on_complete"}
    assert "batch callback" in raised.value.fields["on_complete"]
    assert fake_twilio.sent() == []
