"""An interrupted WhatsApp send is looked up at Twilio before it is sent again."""

from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.utils import timezone

from integrations.twilio_whatsapp import get_whatsapp_client
from messaging.models import WhatsAppMessage
from messaging.services import record_whatsapp_message
from messaging.whatsapp import AMBIGUOUS_RESENDS, deliver, sending_lease
from tests.factories import make_phone

pytestmark = pytest.mark.django_db


CONTENT_SID = "HX" + "0123456789abcdef" * 2


def _interrupted(to: str, body: str = "", *, job_id: str = "job-1", template: str = "") -> WhatsAppMessage:
    """A row an earlier execution claimed and then died with: left `sending`, lease lapsed."""
    message, _ = record_whatsapp_message(
        to=to, scope=job_id, idempotency_key="message", body=body, template=template
    )
    claimed_at = timezone.now() - sending_lease() - timedelta(seconds=1)
    WhatsAppMessage.objects.filter(pk=message.pk).update(
        status=WhatsAppMessage.Status.SENDING, updated_at=claimed_at
    )
    return message


def test_interrupted_send_that_reached_twilio_is_recorded_not_sent_again(fake_twilio):
    to, body = make_phone(7), "Your vehicle has cleared customs."
    message = _interrupted(to, body)
    earlier = get_whatsapp_client().send_text(to=to, body=body)  # what the dead execution sent

    outcome = deliver(message)

    assert outcome.status == "skipped" and outcome.sid == earlier.sid
    assert len(fake_twilio.sent()) == 1
    message.refresh_from_db()
    assert message.status == WhatsAppMessage.Status.SENT and message.twilio_sid == earlier.sid


def test_interrupted_send_that_never_reached_twilio_is_sent(fake_twilio):
    to = make_phone(8)
    message = _interrupted(to, "Your invoice is due.")
    get_whatsapp_client().send_text(to=to, body="Another message, from another job.")

    outcome = deliver(message)

    assert outcome.status == "sent" and outcome.resent_after_ambiguity
    assert len(fake_twilio.sent()) == 2


def test_an_interrupted_send_is_found_even_after_a_long_outage_of_failed_lookups(fake_twilio):
    to, body = make_phone(9), "Your vehicle has been loaded."
    message = _interrupted(to, body)
    first_attempt = timezone.now() - timedelta(hours=2)
    earlier = get_whatsapp_client().send_text(to=to, body=body)  # what the dead execution sent...
    fake_twilio.messages[earlier.sid]["date_created"] = format_datetime(first_attempt, usegmt=True)
    # ...two hours ago, right after the row was recorded; since then every lookup failed (Twilio
    # down) and each re-claim moved updated_at forward.
    WhatsAppMessage.objects.filter(pk=message.pk).update(created_at=first_attempt - timedelta(seconds=1))

    outcome = deliver(message)

    assert outcome.status == "skipped" and outcome.sid == earlier.sid
    assert len(fake_twilio.sent()) == 1


def test_a_message_another_row_recorded_is_not_taken_for_the_interrupted_one(fake_twilio):
    to, body = make_phone(10), "Your deposit was received."
    message = _interrupted(to, body, job_id="job-a")
    ours = get_whatsapp_client().send_text(to=to, body=body)  # job A's attempt reached Twilio
    # Then job B legitimately sent the same text to the same number, and recorded it.
    theirs = get_whatsapp_client().send_text(to=to, body=body)
    WhatsAppMessage.objects.create(
        to=to,
        body=body,
        scope="job-b",
        idempotency_key="message",
        status=WhatsAppMessage.Status.SENT,
        twilio_sid=theirs.sid,
    )

    outcome = deliver(message)

    assert outcome.status == "skipped" and outcome.sid == ours.sid
    assert len(fake_twilio.sent()) == 2


def test_an_interrupted_send_is_resent_when_twilio_has_only_another_rows_message(fake_twilio):
    to, body = make_phone(11), "Your deposit was received."
    message = _interrupted(to, body, job_id="job-a")  # job A's attempt never reached Twilio
    theirs = get_whatsapp_client().send_text(to=to, body=body)
    WhatsAppMessage.objects.create(
        to=to,
        body=body,
        scope="job-b",
        idempotency_key="message",
        status=WhatsAppMessage.Status.SENT,
        twilio_sid=theirs.sid,
    )

    outcome = deliver(message)

    assert outcome.status == "sent" and outcome.resent_after_ambiguity and outcome.sid != theirs.sid
    assert len(fake_twilio.sent()) == 2


def test_an_interrupted_template_is_not_matched_on_recipient_and_time_but_resent_and_counted(fake_twilio):
    to = make_phone(12)
    message = _interrupted(to, template=CONTENT_SID)
    # Some message to this number since the row was recorded: nothing says it is this template.
    other = get_whatsapp_client().send_text(to=to, body="A message from another job.")
    before = AMBIGUOUS_RESENDS._value.get()

    outcome = deliver(message)

    assert outcome.status == "sent" and outcome.resent_after_ambiguity and outcome.sid != other.sid
    assert AMBIGUOUS_RESENDS._value.get() == before + 1
    assert fake_twilio.sent()[-1].form["ContentSid"] == CONTENT_SID
