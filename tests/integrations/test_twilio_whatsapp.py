"""The Twilio WhatsApp client through the real twilio SDK against a local fake Twilio."""

import json
import logging
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from twilio.request_validator import RequestValidator

from integrations import ratelimit
from integrations.errors import (
    InvalidRecipient,
    InvalidSignature,
    PermanentError,
    RateLimited,
    TransientError,
)
from integrations.twilio_whatsapp import (
    ConsoleWhatsApp,
    TwilioWhatsApp,
    get_whatsapp_client,
    parse_status_callback,
    verify_status_callback,
)
from tests.support.fakes import twilio as fake
from tests.support.fakes.twilio import twilio_error
from tests.support.processes import free_port

TO = "+14165550123"
CONTENT_SID = "HX" + "ab" * 16


def test_text_is_posted_to_the_messages_api_of_the_base_url_with_whatsapp_addresses(fake_twilio):
    sent = get_whatsapp_client().send_text(to=TO, body="Your Corolla has shipped")

    [request] = fake_twilio.sent()
    assert request.path == f"/2010-04-01/Accounts/{fake.ACCOUNT_SID}/Messages.json"
    assert request.form["To"] == f"whatsapp:{TO}"
    assert request.form["From"] == f"whatsapp:{fake.WHATSAPP_FROM}"
    assert request.form["Body"] == "Your Corolla has shipped"
    assert sent.sid in fake_twilio.messages and sent.status == "queued"
    assert sent.sid.startswith("SM") and len(sent.sid) == 34


def test_template_is_sent_as_content_sid_and_json_content_variables(fake_twilio):
    get_whatsapp_client().send_template(to=TO, content_sid=CONTENT_SID, variables={"1": "Corolla", 2: 2018})

    [request] = fake_twilio.sent()
    assert request.form["ContentSid"] == CONTENT_SID
    assert json.loads(request.form["ContentVariables"]) == {"1": "Corolla", "2": "2018"}
    assert "Body" not in request.form


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (500, twilio_error(500, 20500, "Internal Server Error"), {}),
        (503, twilio_error(503, 20503, "Service Unavailable"), {}),
        (429, twilio_error(429, 20429, "Too Many Requests"), {"Retry-After": "7"}),
    ],
)
def test_server_errors_and_429_are_transient(fake_twilio, status, body, headers):
    fake_twilio.fail_next(status, body, headers=headers)

    with pytest.raises(TransientError) as raised:
        get_whatsapp_client().send_text(to=TO, body="hello")

    assert raised.value.provider == "twilio"
    assert raised.value.code == body["code"]
    if headers:
        assert raised.value.retry_after == 7.0


def test_a_hung_connection_is_transient_within_the_read_timeout(fake_twilio, short_timeouts):
    fake_twilio.hang_next()

    started = time.monotonic()
    with pytest.raises(TransientError) as raised:
        get_whatsapp_client().send_text(to=TO, body="hello")
    elapsed = time.monotonic() - started

    assert raised.value.code == "timeout"
    assert 0.4 <= elapsed < short_timeouts.INTEGRATION_READ_TIMEOUT + 1.0
    assert len(fake_twilio.sent()) == 1  # one request: the SDK did not retry it


def test_a_refused_connection_is_transient(fake_twilio, settings):
    settings.TWILIO_BASE_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    with pytest.raises(TransientError) as raised:
        get_whatsapp_client().send_text(to=TO, body="hello")

    assert raised.value.code == "connection_error"


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, 21602), (401, 20003), (404, 20404)],
)
def test_client_errors_are_permanent_with_twilio_code(fake_twilio, status, code):
    fake_twilio.fail_next(status, twilio_error(status, code, "refused"))

    with pytest.raises(PermanentError) as raised:
        get_whatsapp_client().send_text(to=TO, body="hello")

    assert not isinstance(raised.value, TransientError)
    assert raised.value.code == code


def test_wrong_credentials_are_permanent(fake_twilio, settings):
    settings.TWILIO_AUTH_TOKEN = "not-the-token"

    with pytest.raises(PermanentError) as raised:
        get_whatsapp_client().send_text(to=TO, body="hello")

    assert raised.value.code == 20003


@pytest.mark.parametrize(
    ("number", "code"),
    [(fake.INVALID_NUMBER, 21211), (fake.NOT_MOBILE_NUMBER, 21614), (fake.NO_WHATSAPP_NUMBER, 63003)],
)
def test_invalid_numbers_are_permanent_invalid_recipient_and_masked(fake_twilio, number, code):
    with pytest.raises(InvalidRecipient) as raised:
        get_whatsapp_client().send_text(to=number, body="hello")

    assert raised.value.code == code
    assert number not in str(raised.value)  # the number is masked in what reaches dead letters


def test_a_malformed_number_is_refused_before_any_request(fake_twilio):
    with pytest.raises(InvalidRecipient) as raised:
        get_whatsapp_client().send_text(to="416-555-0123", body="hello")

    assert "to must be an E.164" in str(raised.value)
    assert fake_twilio.sent() == []


def test_log_lines_never_hold_the_full_phone_number(fake_twilio, caplog):
    caplog.set_level(logging.DEBUG)

    get_whatsapp_client().send_text(to=TO, body="hello")

    assert "+1416*****23" in caplog.text
    assert TO not in caplog.text


def test_without_credentials_the_console_backend_logs_and_answers_like_twilio(settings, caplog):
    settings.TWILIO_ACCOUNT_SID = settings.TWILIO_AUTH_TOKEN = settings.TWILIO_BACKEND = ""
    caplog.set_level(logging.INFO, logger="integrations.console")

    client = get_whatsapp_client()
    sent = client.send_text(to=TO, body="hello")

    assert isinstance(client, ConsoleWhatsApp)
    assert sent.sid.startswith("SM") and len(sent.sid) == 34 and sent.status == "queued"
    assert "would send WhatsApp text" in caplog.text and TO not in caplog.text


def test_the_backend_setting_overrides_the_choice(fake_twilio, settings):
    settings.TWILIO_BACKEND = "integrations.twilio_whatsapp.ConsoleWhatsApp"
    assert isinstance(get_whatsapp_client(), ConsoleWhatsApp)
    settings.TWILIO_BACKEND = ""
    assert isinstance(get_whatsapp_client(), TwilioWhatsApp)


# --- status callbacks ----------------------------------------------------------------------------

CALLBACK_URL = "https://ops.example.com/webhooks/twilio/status"
CALLBACK = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered", "AccountSid": fake.ACCOUNT_SID}


def _signed(params, token=fake.AUTH_TOKEN, url=CALLBACK_URL):
    return RequestValidator(token).compute_signature(url, params)


def test_status_callback_signed_by_twilio_is_accepted(settings):
    settings.TWILIO_AUTH_TOKEN = fake.AUTH_TOKEN

    verify_status_callback(CALLBACK_URL, CALLBACK, _signed(CALLBACK))

    assert parse_status_callback(CALLBACK).status == "delivered"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda: ({**CALLBACK}, _signed(CALLBACK, token="someone-else")),  # wrong key
        lambda: ({**CALLBACK, "MessageStatus": "read"}, _signed(CALLBACK)),  # altered body
        lambda: (CALLBACK, _signed(CALLBACK, url=CALLBACK_URL + "?x=1")),  # other URL
        lambda: (CALLBACK, ""),  # no signature
    ],
    ids=["wrong-key", "altered-params", "other-url", "missing"],
)
def test_status_callback_with_a_wrong_signature_is_rejected(settings, tamper):
    settings.TWILIO_AUTH_TOKEN = fake.AUTH_TOKEN
    params, signature = tamper()

    with pytest.raises(InvalidSignature):
        verify_status_callback(CALLBACK_URL, params, signature)


def test_status_callbacks_are_rejected_when_no_auth_token_is_configured(settings):
    settings.TWILIO_AUTH_TOKEN = ""

    with pytest.raises(InvalidSignature) as raised:
        verify_status_callback(CALLBACK_URL, CALLBACK, _signed(CALLBACK, token=""))

    assert raised.value.code == "not_configured"


def test_a_spent_rate_limit_defers_the_send_without_calling_twilio(fake_twilio, settings):
    settings.RATE_LIMITS = {"twilio": "2/s"}
    ratelimit.reset("twilio")
    client = get_whatsapp_client()
    client.send_text(to=TO, body="one")
    client.send_text(to=TO, body="two")

    with pytest.raises(RateLimited) as raised:
        client.send_text(to=TO, body="three")

    assert 0 < raised.value.retry_after <= 1.1
    assert [r.form["Body"] for r in fake_twilio.sent()] == ["one", "two"]


# --- account and sender settings ----------------------------------------------------------------


def test_a_region_the_account_may_not_send_to_is_permanent_not_an_invalid_recipient(fake_twilio):
    # 21408 is an account setting: fixable, so the job may be replayed, not the recipient written off.
    with pytest.raises(PermanentError) as raised:
        get_whatsapp_client().send_text(to=fake.REGION_NOT_ENABLED_NUMBER, body="hello")

    assert not isinstance(raised.value, InvalidRecipient)
    assert raised.value.code == 21408


def test_a_malformed_sender_setting_is_permanent_not_an_invalid_recipient(fake_twilio, settings):
    settings.TWILIO_WHATSAPP_FROM = "Acme Motors"

    for call in (
        lambda c: c.send_text(to=TO, body="hello"),
        lambda c: c.find_sent(to=TO, since=timezone.now()),
    ):
        with pytest.raises(PermanentError) as raised:
            call(get_whatsapp_client())
        assert not isinstance(raised.value, InvalidRecipient)
        assert raised.value.code == "invalid_sender" and "TWILIO_WHATSAPP_FROM" in str(raised.value)
    assert fake_twilio.requests == []


def test_the_status_callback_url_setting_is_sent_as_status_callback_on_every_send(fake_twilio, settings):
    settings.TWILIO_STATUS_CALLBACK_URL = CALLBACK_URL
    client = get_whatsapp_client()

    client.send_text(to=TO, body="hello")
    client.send_template(to=TO, content_sid=CONTENT_SID, variables={"1": "Corolla"})

    assert [r.form.get("StatusCallback") for r in fake_twilio.sent()] == [CALLBACK_URL, CALLBACK_URL]


def test_without_a_status_callback_url_no_statuses_are_asked_for(fake_twilio, settings):
    settings.TWILIO_STATUS_CALLBACK_URL = ""

    get_whatsapp_client().send_text(to=TO, body="hello")

    [request] = fake_twilio.sent()
    assert "StatusCallback" not in request.form


def test_find_sent_lists_every_match_newest_first_since_the_given_time(fake_twilio):
    client = get_whatsapp_client()
    older = client.send_text(to=TO, body="Your invoice is due.")
    client.send_text(to=TO, body="Something else.")
    newer = client.send_text(to=TO, body="Your invoice is due.")

    found = client.find_sent(to=TO, since=timezone.now() - timedelta(minutes=1), body="Your invoice is due.")
    later = client.find_sent(to=TO, since=timezone.now() + timedelta(minutes=1), body="Your invoice is due.")

    assert [m.sid for m in found] == [newer.sid, older.sid]
    assert later == []
