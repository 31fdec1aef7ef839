"""Webhooks: Stripe events (signature verified by the real stripe library; payment events update
the invoice through a durable job; a replay changes nothing) and Twilio status callbacks
(X-Twilio-Signature verified; status recorded, forward only)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from audit.models import AuditLog
from billing.models import Invoice, PaymentAttempt
from billing.stripe_events import apply_stripe_event
from http_api.models import WebhookEvent
from jobs.models import OutboxMessage
from marketplace.models import Deal
from messaging.models import WhatsAppMessage
from tests.factories import make_invoice, make_payment_attempt, make_whatsapp_message
from tests.http_api.conftest import assert_error
from tests.support.processes import wait_until

STRIPE_SECRET = "whsec_test_" + "s" * 24
TWILIO_TOKEN = "twilio-test-auth-token"
STATUS_URL = "http://testserver/webhooks/twilio/status"


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN


def stripe_event(
    event_type: str,
    *,
    intent_id: str,
    invoice_id: int | None = None,
    event_id: str | None = None,
) -> bytes:
    intent = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": 125000,
        "currency": "cad",
        "status": "succeeded" if event_type.endswith("succeeded") else "requires_payment_method",
        "metadata": {"invoice_id": str(invoice_id)} if invoice_id else {},
    }
    return json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": intent},
        }
    ).encode()


def stripe_signature(payload: bytes, *, secret: str = STRIPE_SECRET, timestamp: int | None = None) -> str:
    """Stripe's signing scheme: t=<unix time>,v1=HMAC-SHA256(secret, "<t>.<payload>")."""
    timestamp = timestamp or int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def post_stripe(client: Client, payload: bytes, signature: str | None):
    headers = {"HTTP_STRIPE_SIGNATURE": signature} if signature is not None else {}
    return client.post("/webhooks/stripe", data=payload, content_type="application/json", **headers)


def post_twilio(client: Client, params: dict[str, str], *, token: str = TWILIO_TOKEN):
    signature = RequestValidator(token).compute_signature(STATUS_URL, params)
    return client.post("/webhooks/twilio/status", data=params, HTTP_X_TWILIO_SIGNATURE=signature)


def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)  # providers send no CSRF token


# --- Stripe -------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "signature",
    [
        None,
        "t=1,v1=deadbeef",
        "garbage",
        "wrong-secret",
        "stale",
    ],
)
def test_an_unverified_stripe_event_is_400_invalid_signature_and_enqueues_nothing(signature):
    payload = stripe_event("payment_intent.succeeded", intent_id="pi_123")
    if signature == "wrong-secret":
        signature = stripe_signature(payload, secret="whsec_someone_else")
    elif signature == "stale":  # older than the stripe library's 5-minute tolerance
        signature = stripe_signature(payload, timestamp=int(time.time()) - 3600)

    assert_error(post_stripe(csrf_client(), payload, signature), 400, "invalid_signature")
    assert not WebhookEvent.objects.exists()
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_a_tampered_stripe_payload_is_refused():
    payload = stripe_event("payment_intent.succeeded", intent_id="pi_123")
    signature = stripe_signature(payload)

    tampered = payload.replace(b"pi_123", b"pi_999")

    assert_error(post_stripe(csrf_client(), tampered, signature), 400, "invalid_signature")
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_stripe_events_we_do_not_apply_are_acknowledged_and_ignored():
    payload = stripe_event("charge.refunded", intent_id="pi_1")

    response = post_stripe(csrf_client(), payload, stripe_signature(payload))

    assert response.status_code == 200 and response.json() == {"received": True, "handled": False}
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("live_worker")
def test_payment_succeeded_pays_the_invoice_and_the_deal_through_a_durable_job():
    invoice = make_invoice(status=Invoice.Status.PROCESSING, stripe_payment_intent_id="pi_paid_1")
    assert invoice.deal.status == Deal.Status.INVOICED
    payload = stripe_event("payment_intent.succeeded", intent_id="pi_paid_1")

    response = post_stripe(csrf_client(), payload, stripe_signature(payload))

    assert response.status_code == 200
    job_id = response.json()["job_id"]
    outbox = OutboxMessage.objects.get(job_id=job_id)
    assert outbox.task_name == "tasks.payments.apply_stripe_event"
    wait_until(
        lambda: Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID,
        timeout=30,
        what="the invoice to be paid",
    )
    assert Invoice.objects.get(pk=invoice.pk).paid_at is not None
    # The same recording as the payments task: the deal is paid (so its commission can be
    # computed) and the payment is audited with what Stripe says was paid.
    assert Deal.objects.get(pk=invoice.deal_id).status == Deal.Status.PAID
    recorded = AuditLog.objects.get(
        object_type="billing.invoice", object_id=str(invoice.pk), action="payment_recorded"
    )
    assert recorded.changes == {"payment_intent": [None, "pi_paid_1"], "amount_minor": [None, 125000]}
    wait_until(lambda: OutboxMessage.objects.get(job_id=job_id).completed_at, timeout=30, what="completion")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("live_worker")
def test_a_replayed_stripe_event_changes_nothing_the_second_time():
    invoice = make_invoice(status=Invoice.Status.PROCESSING, stripe_payment_intent_id="pi_replayed")
    payload = stripe_event("payment_intent.succeeded", intent_id="pi_replayed", event_id="evt_replayed_1")
    first = post_stripe(csrf_client(), payload, stripe_signature(payload))
    wait_until(
        lambda: Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID,
        timeout=30,
        what="the invoice to be paid",
    )
    audit_rows = AuditLog.objects.count()

    replay = post_stripe(csrf_client(), payload, stripe_signature(payload))

    assert first.status_code == replay.status_code == 200
    assert replay.json() == {"received": True, "duplicate": True}
    assert OutboxMessage.objects.filter(task_name="tasks.payments.apply_stripe_event").count() == 1
    assert WebhookEvent.objects.filter(event_id="evt_replayed_1").count() == 1
    assert AuditLog.objects.count() == audit_rows


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("live_worker")
def test_payment_failed_fails_the_invoice_whose_current_payment_it_is():
    invoice = make_invoice(status=Invoice.Status.PROCESSING, stripe_payment_intent_id="pi_failing")
    payload = stripe_event("payment_intent.payment_failed", intent_id="pi_failing", invoice_id=invoice.pk)

    assert post_stripe(csrf_client(), payload, stripe_signature(payload)).status_code == 200

    wait_until(
        lambda: Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.FAILED,
        timeout=30,
        what="the invoice to be marked failed",
    )


@pytest.mark.django_db
def test_applying_one_event_twice_in_one_job_changes_the_invoice_once():
    invoice = make_invoice(status=Invoice.Status.OPEN, stripe_payment_intent_id="pi_twice")
    arguments = {
        "event_id": "evt_twice",
        "event_type": "payment_intent.succeeded",
        "payment_intent_id": "pi_twice",
        "job_id": "job-1",
    }
    assert apply_stripe_event(**arguments) == "paid"
    paid_at = Invoice.objects.get(pk=invoice.pk).paid_at

    assert apply_stripe_event(**arguments) == "already_applied"
    assert Invoice.objects.get(pk=invoice.pk).paid_at == paid_at


@pytest.mark.django_db
def test_a_late_failure_never_undoes_a_payment():
    invoice = make_invoice(status=Invoice.Status.PAID, stripe_payment_intent_id="pi_late")

    outcome = apply_stripe_event(
        event_id="evt_late",
        event_type="payment_intent.payment_failed",
        payment_intent_id="pi_late",
        job_id="job-late",
    )

    assert outcome == "unchanged"
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID


@pytest.mark.django_db
def test_a_payment_found_by_metadata_pays_the_invoice_and_the_deal():
    invoice = make_invoice(status=Invoice.Status.OPEN)  # the intent id was never stored

    outcome = apply_stripe_event(
        event_id="evt_meta",
        event_type="payment_intent.succeeded",
        payment_intent_id="pi_not_stored",
        invoice_id=str(invoice.pk),
        amount_minor=125000,
        job_id="job-meta",
    )

    assert outcome == "paid"
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID
    assert Deal.objects.get(pk=invoice.deal_id).status == Deal.Status.PAID


@pytest.mark.django_db
def test_a_late_failure_of_an_old_intent_leaves_the_current_payment_alone():
    invoice = make_invoice(status=Invoice.Status.PROCESSING, stripe_payment_intent_id="pi_current")
    make_payment_attempt(
        invoice=invoice, number=1, stripe_payment_intent_id="pi_old", stripe_status="canceled"
    )
    make_payment_attempt(
        invoice=invoice, number=2, stripe_payment_intent_id="pi_current", stripe_status="processing"
    )

    outcome = apply_stripe_event(
        event_id="evt_old_failure",
        event_type="payment_intent.payment_failed",
        payment_intent_id="pi_old",
        invoice_id=str(invoice.pk),
        job_id="job-old-failure",
    )

    assert outcome == "unchanged"
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PROCESSING
    assert PaymentAttempt.objects.get(invoice=invoice, number=2).stripe_status == "processing"


@pytest.mark.django_db
def test_a_late_failure_never_moves_a_succeeded_attempt_backwards():
    invoice = make_invoice(status=Invoice.Status.PAID, stripe_payment_intent_id="pi_done")
    make_payment_attempt(invoice=invoice, stripe_payment_intent_id="pi_done", stripe_status="succeeded")

    apply_stripe_event(
        event_id="evt_done_failure",
        event_type="payment_intent.payment_failed",
        payment_intent_id="pi_done",
        job_id="job-done-failure",
    )

    assert PaymentAttempt.objects.get(invoice=invoice).stripe_status == "succeeded"
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID


# --- Twilio -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_signed_twilio_status_is_recorded():
    message = make_whatsapp_message(twilio_sid="SM" + "a" * 32, status=WhatsAppMessage.Status.SENT)

    response = post_twilio(csrf_client(), {"MessageSid": message.twilio_sid, "MessageStatus": "delivered"})

    assert response.status_code == 200
    assert response.json() == {"received": True, "recorded": True, "status": "delivered"}
    assert WhatsAppMessage.objects.get(pk=message.pk).status == "delivered"


@pytest.mark.django_db
def test_a_failed_delivery_records_its_error_code():
    message = make_whatsapp_message(twilio_sid="SM" + "f" * 32, status=WhatsAppMessage.Status.SENT)

    post_twilio(
        csrf_client(),
        {"MessageSid": message.twilio_sid, "MessageStatus": "undelivered", "ErrorCode": "63016"},
    )

    stored = WhatsAppMessage.objects.get(pk=message.pk)
    assert (stored.status, stored.error_code) == ("undelivered", "63016")


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["missing", "wrong token", "other params"])
def test_an_unsigned_or_forged_twilio_callback_is_403_and_changes_nothing(how):
    message = make_whatsapp_message(twilio_sid="SM" + "b" * 32, status=WhatsAppMessage.Status.SENT)
    params = {"MessageSid": message.twilio_sid, "MessageStatus": "read"}
    client = csrf_client()
    if how == "missing":
        response = client.post("/webhooks/twilio/status", data=params)
    elif how == "wrong token":
        response = post_twilio(client, params, token="not-our-token")
    else:
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(
            STATUS_URL, {**params, "MessageStatus": "sent"}
        )
        response = client.post("/webhooks/twilio/status", data=params, HTTP_X_TWILIO_SIGNATURE=signature)

    assert_error(response, 403, "invalid_signature")
    assert WhatsAppMessage.objects.get(pk=message.pk).status == "sent"


@pytest.mark.django_db
def test_a_replayed_or_late_twilio_status_never_moves_a_message_backwards():
    message = make_whatsapp_message(twilio_sid="SM" + "c" * 32, status=WhatsAppMessage.Status.SENT)
    client = csrf_client()
    post_twilio(client, {"MessageSid": message.twilio_sid, "MessageStatus": "read"})

    replay = post_twilio(client, {"MessageSid": message.twilio_sid, "MessageStatus": "read"})
    late = post_twilio(client, {"MessageSid": message.twilio_sid, "MessageStatus": "delivered"})

    assert replay.status_code == late.status_code == 200
    assert late.json()["status"] == "read"
    assert WhatsAppMessage.objects.get(pk=message.pk).status == "read"


@pytest.mark.django_db
def test_a_status_for_an_unknown_message_is_acknowledged_not_recorded():
    response = post_twilio(csrf_client(), {"MessageSid": "SM" + "d" * 32, "MessageStatus": "delivered"})

    assert response.status_code == 200 and response.json()["recorded"] is False


def test_webhooks_accept_only_post(client):
    assert_error(client.get("/webhooks/stripe"), 405, "method_not_allowed")
    assert_error(client.get("/webhooks/twilio/status"), 405, "method_not_allowed")
