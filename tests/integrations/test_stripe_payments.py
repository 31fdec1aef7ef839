"""The Stripe client through the real stripe SDK (StripeClient) against a local fake Stripe."""

import json
import time
from decimal import Decimal

import pytest

from integrations.errors import InvalidSignature, PaymentDeclined, PermanentError, TransientError
from integrations.stripe_payments import (
    ConsolePayments,
    get_payments_client,
    idempotency_key,
    parse_webhook_event,
    to_minor_units,
)
from tests.support.fakes import stripe as fake
from tests.support.fakes.stripe import sign_webhook, stripe_error, webhook_payload


def _create(client, *, invoice_id=42, attempt=1, **extra):
    return client.create_payment_intent(
        invoice_id=invoice_id, attempt=attempt, amount_minor=125050, currency="CAD", **extra
    )


def test_create_confirm_and_retrieve_a_payment_intent(fake_stripe):
    client = get_payments_client()

    created = _create(client, payment_method="pm_card_visa")
    confirmed = client.confirm_payment_intent(invoice_id=42, attempt=1, intent_id=created.id)
    retrieved = client.retrieve_payment_intent(created.id)

    assert (created.status, created.amount, created.currency) == ("requires_confirmation", 125050, "CAD")
    assert created.metadata == {"invoice_id": "42", "attempt": "1"}
    assert confirmed.status == retrieved.status == "succeeded"
    assert [r.path for r in fake_stripe.requests] == [
        "/v1/payment_intents",
        f"/v1/payment_intents/{created.id}/confirm",
        f"/v1/payment_intents/{created.id}",
    ]
    assert fake_stripe.requests[0].header("Authorization") == f"Bearer {fake.SECRET_KEY}"


def test_a_retried_step_sends_the_same_idempotency_key_and_a_new_attempt_a_new_one(fake_stripe):
    client = get_payments_client()
    fake_stripe.fail_next(500, stripe_error("api_error", "Something went wrong"))

    with pytest.raises(TransientError):
        _create(client, attempt=1)  # first try of attempt 1: Stripe failed
    first = _create(client, attempt=1)  # the task retries the same step
    again = _create(client, attempt=1)  # a redelivered job runs it once more
    second_attempt = _create(client, attempt=2)  # a new payment attempt on the same invoice

    keys = fake_stripe.idempotency_keys()
    assert keys == ["invoice-42-attempt-1-create"] * 3 + ["invoice-42-attempt-2-create"]
    assert again.id == first.id  # Stripe replayed the first answer: one intent, not two
    assert second_attempt.id != first.id
    assert len(fake_stripe.intents) == 2


def test_confirm_steps_have_their_own_keys_per_attempt(fake_stripe):
    client = get_payments_client()
    intent = _create(client, payment_method="pm_card_visa")

    client.confirm_payment_intent(invoice_id=42, attempt=1, intent_id=intent.id)
    client.confirm_payment_intent(invoice_id=42, attempt=1, intent_id=intent.id)

    assert fake_stripe.idempotency_keys("/confirm") == ["invoice-42-attempt-1-confirm"] * 2
    assert idempotency_key(invoice_id=42, attempt=2, step="confirm") == "invoice-42-attempt-2-confirm"


@pytest.mark.parametrize(
    ("status", "headers"),
    [(500, {}), (503, {}), (429, {"Retry-After": "3"})],
)
def test_server_errors_and_429_are_transient(fake_stripe, status, headers):
    fake_stripe.fail_next(status, stripe_error("api_error", "unavailable"), headers=headers)

    with pytest.raises(TransientError) as raised:
        _create(get_payments_client())

    assert raised.value.provider == "stripe"
    assert len(fake_stripe.requests) == 1  # the SDK did not retry on its own
    if headers:
        assert raised.value.retry_after == 3.0


def test_a_hung_connection_is_transient_within_the_read_timeout(fake_stripe, short_timeouts):
    fake_stripe.hang_next()

    started = time.monotonic()
    with pytest.raises(TransientError):
        _create(get_payments_client())

    assert time.monotonic() - started < short_timeouts.INTEGRATION_READ_TIMEOUT + 1.0
    assert len(fake_stripe.requests) == 1


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "parameter_invalid_integer"), (401, None), (404, "resource_missing")],
)
def test_client_errors_are_permanent(fake_stripe, status, code):
    fake_stripe.fail_next(status, stripe_error("invalid_request_error", "refused", code=code))

    with pytest.raises(PermanentError) as raised:
        _create(get_payments_client())

    assert raised.value.code == (code or "invalid_request_error")


def test_a_wrong_secret_key_is_permanent(fake_stripe, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_wrong"

    with pytest.raises(PermanentError) as raised:
        _create(get_payments_client())

    assert "Invalid API Key" in str(raised.value)


def test_a_declined_card_is_a_permanent_payment_declined_with_the_decline_code(fake_stripe):
    client = get_payments_client()
    intent = _create(client, payment_method=fake.DECLINED_PAYMENT_METHOD)

    with pytest.raises(PaymentDeclined) as raised:
        client.confirm_payment_intent(invoice_id=42, attempt=1, intent_id=intent.id)

    assert raised.value.code == "generic_decline"
    assert client.retrieve_payment_intent(intent.id).last_error_code == "generic_decline"


def test_reusing_a_key_with_other_parameters_is_permanent(fake_stripe):
    client = get_payments_client()
    _create(client)

    with pytest.raises(PermanentError) as raised:
        client.create_payment_intent(invoice_id=42, attempt=1, amount_minor=1, currency="CAD")

    assert raised.value.code == "idempotency_error"


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        (Decimal("1250.50"), "CAD", 125050),
        (Decimal("19.99"), "usd", 1999),
        (Decimal("650000"), "XAF", 650000),
        (Decimal("0.005"), "CAD", 1),
    ],
)
def test_amounts_are_minor_units_and_xaf_is_zero_decimal(amount, currency, minor):
    assert to_minor_units(amount, currency) == minor


def test_without_a_secret_key_the_console_backend_answers_like_stripe(settings):
    settings.STRIPE_SECRET_KEY = settings.STRIPE_BACKEND = ""
    client = get_payments_client()

    intent = _create(client)

    assert isinstance(client, ConsolePayments)
    assert intent.id.startswith("pi_") and len(intent.id) == 27
    assert _create(client).id == intent.id  # same key, same intent, as Stripe does
    assert client.confirm_payment_intent(invoice_id=42, attempt=1, intent_id=intent.id).status == "succeeded"


# --- webhooks ------------------------------------------------------------------------------------


def test_a_webhook_signed_with_the_secret_is_parsed(settings):
    settings.STRIPE_WEBHOOK_SECRET = fake.WEBHOOK_SECRET
    payload = webhook_payload("payment_intent.succeeded", {"id": "pi_123", "status": "succeeded"})

    event = parse_webhook_event(payload, sign_webhook(payload))

    assert event.type == "payment_intent.succeeded"
    assert event.object == {"id": "pi_123", "status": "succeeded"}
    assert event.id == json.loads(payload)["id"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: (p, sign_webhook(p, "whsec_someone_else")),
        lambda p: (p.replace(b"succeeded", b"canceled"), sign_webhook(p)),
        lambda p: (p, sign_webhook(p, timestamp=int(time.time()) - 3600)),  # replayed an hour later
        lambda p: (p, None),
        lambda p: (p, "garbage"),
    ],
    ids=["wrong-secret", "altered-body", "too-old", "missing", "garbage"],
)
def test_a_webhook_with_a_wrong_signature_is_rejected(settings, tamper):
    settings.STRIPE_WEBHOOK_SECRET = fake.WEBHOOK_SECRET
    payload, header = tamper(webhook_payload())

    with pytest.raises(InvalidSignature):
        parse_webhook_event(payload, header)


def test_webhooks_are_rejected_when_no_secret_is_configured(settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    payload = webhook_payload()

    with pytest.raises(InvalidSignature) as raised:
        parse_webhook_event(payload, sign_webhook(payload, ""))

    assert raised.value.code == "not_configured"
