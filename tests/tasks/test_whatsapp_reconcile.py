"""An interrupted WhatsApp send is looked up at Twilio before it is sent again."""

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.twilio_whatsapp import get_whatsapp_client
from messaging.models import WhatsAppMessage
from messaging.services import record_whatsapp_message
from messaging.whatsapp import deliver, sending_lease
from tests.factories import make_phone

pytestmark = pytest.mark.django_db


def _interrupted(to: str, body: str) -> WhatsAppMessage:
    """A row an earlier execution claimed and then died with: left `sending`, lease lapsed."""
    message, _ = record_whatsapp_message(to=to, job_id="job-1", idempotency_key="message", body=body)
    claimed_at = timezone.now() - sending_lease() - timedelta(seconds=1)
    WhatsAppMessage.objects.filter(pk=message.pk).update(status=WhatsAppMessage.Status.SENDING,
                                                         updated_at=claimed_at)
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
