"""WhatsApp messages through Twilio's Messages API with the official SDK, and the verification of
Twilio's signed status callbacks.

    client = get_whatsapp_client()
    sent = client.send_text(to="+14165550123", body="Your vehicle has shipped")
    sent = client.send_template(to="+14165550123", content_sid="HX...", variables={"1": "Corolla"})

Every failure is an `integrations.errors` type: InvalidRecipient (Twilio will never deliver to
that number), PermanentError (auth, bad request, an account or sender setting), TransientError
(timeouts, 5xx, 429). When TWILIO_STATUS_CALLBACK_URL is set, every send asks Twilio to post the
message's delivery statuses there.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

from django.conf import settings
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from identifiers import WHATSAPP_PREFIX, is_content_sid, is_e164, mask_phone, mask_phones_in
from integrations import ratelimit
from integrations.backends import backend_class, console_log, fake_id
from integrations.errors import (
    IntegrationError,
    InvalidRecipient,
    InvalidSignature,
    PermanentError,
    TransientError,
)
from integrations.http import TRANSIENT_STATUSES, parse_retry_after, timeouts, transport_errors

logger = logging.getLogger(__name__)
PROVIDER = "twilio"

# https://www.twilio.com/docs/api/errors: codes saying this recipient can never be reached.
# (Not 21408, "permission to send to this region is not enabled": an account setting, fixable,
# so a plain PermanentError whose dead letter can be replayed once the account allows the region.)
INVALID_RECIPIENT_CODES = frozenset(
    {
        21211,  # invalid 'To' phone number
        21610,  # recipient replied STOP (unsubscribed)
        21614,  # 'To' is not a valid mobile number
        63003,  # channel could not find the To address (no WhatsApp account)
        63024,  # invalid message recipient
    }
)
# Codes that waiting heals, whatever the HTTP status says.
TRANSIENT_CODES = frozenset(
    {
        20429,  # too many requests
        63018,  # rate limit exceeded for the WhatsApp channel
        20500,  # internal server error
        20503,  # service unavailable
    }
)

# Connections kept open to Twilio per process: at least the threads of the notifications worker.
POOL_SIZE = 64

# The SDK builds absolute https://<product>.twilio.com URLs; TWILIO_BASE_URL replaces this part.
_TWILIO_ORIGIN = re.compile(r"^https://[A-Za-z0-9.-]+\.twilio\.com")

# The SDK logs every request and response at INFO; keep its chatter (and URLs) out of our logs.
_sdk_logger = logging.getLogger("integrations.twilio_whatsapp.sdk")
_sdk_logger.setLevel(logging.WARNING)


@dataclass(frozen=True)
class SentMessage:
    """What Twilio accepted: the message SID to record, its first status, the address it went to."""

    sid: str
    status: str
    to: str


@dataclass(frozen=True)
class StatusUpdate:
    """One status callback from Twilio, already verified."""

    sid: str
    status: str  # queued | sent | delivered | read | undelivered | failed
    error_code: int | None


class WhatsAppClient(Protocol):
    def send_text(self, *, to: str, body: str, status_callback: str | None = None) -> SentMessage: ...

    def send_template(
        self, *, to: str, content_sid: str, variables: Mapping[str, Any], status_callback: str | None = None
    ) -> SentMessage: ...

    def find_sent(self, *, to: str, since: datetime, body: str | None = None) -> list[SentMessage]: ...


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str
    auth_token: str
    whatsapp_from: str
    base_url: str
    timeout: tuple[float, float]
    status_callback: str = ""

    @classmethod
    def from_settings(cls) -> TwilioConfig:
        return cls(
            account_sid=settings.TWILIO_ACCOUNT_SID,
            auth_token=settings.TWILIO_AUTH_TOKEN,
            whatsapp_from=settings.TWILIO_WHATSAPP_FROM,
            base_url=settings.TWILIO_BASE_URL.rstrip("/"),
            timeout=timeouts(),
            status_callback=settings.TWILIO_STATUS_CALLBACK_URL,
        )


def whatsapp_address(number: str, *, field: str = "to") -> str:
    """'+14165550123' or 'whatsapp:+14165550123' -> 'whatsapp:+14165550123'; else InvalidRecipient."""
    # InvalidRecipient marks the recipient's row failed for good: right for `to` only.
    bare = number.removeprefix(WHATSAPP_PREFIX) if isinstance(number, str) else ""
    if not is_e164(bare):
        raise InvalidRecipient(
            f"{field} must be an E.164 phone number like +14165550123",
            provider=PROVIDER,
            code="invalid_number",
        )
    return f"{WHATSAPP_PREFIX}{bare}"


class _TwilioTransport(TwilioHttpClient):
    """The SDK's HTTP client with a (connect, read) timeout, no retries, and an optional base URL
    that every request is sent to instead of https://*.twilio.com (Twilio's documented way to
    point the SDK elsewhere is a custom HttpClient)."""

    def __init__(self, *, base_url: str, timeout: tuple[float, float]) -> None:
        super().__init__(pool_connections=True, logger=_sdk_logger, max_retries=0)
        # HttpClient.__init__ only accepts a number; requests takes the (connect, read) pair.
        self.timeout = timeout  # type: ignore[assignment]
        # One client serves every thread of a threads-pool worker (the notifications queue):
        # requests' pool keeps up to POOL_SIZE connections instead of reopening past 10.
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, HTTPAdapter(max_retries=0, pool_maxsize=POOL_SIZE))
        self.base_url = base_url
        self._local = threading.local()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any):
        if self.base_url:
            url = _TWILIO_ORIGIN.sub(self.base_url, url, count=1)
        self._local.headers = {}
        # The slot is taken here, the moment before the bytes go out, not before the SDK builds
        # the request: the SDK's first call in a process spends ~0.2 s importing, which would
        # otherwise bunch requests up at Twilio beyond the limit.
        ratelimit.acquire(PROVIDER)
        response = super().request(method, url, *args, **kwargs)
        # TwilioRestException drops the headers; the error mapping needs Retry-After.
        self._local.headers = dict(response.headers or {})
        return response

    def last_headers(self) -> Mapping[str, str]:
        return getattr(self._local, "headers", {}) or {}


class TwilioWhatsApp:
    """The real backend: Twilio's Messages API through the official SDK."""

    def __init__(self, config: TwilioConfig) -> None:
        self.config = config
        self.transport = _TwilioTransport(base_url=config.base_url, timeout=config.timeout)
        self.client = Client(config.account_sid, config.auth_token, http_client=self.transport)
        # Resolve the SDK's lazily imported Messages resource now, not inside the first send.
        self.messages = self.client.messages

    def send_text(self, *, to: str, body: str, status_callback: str | None = None) -> SentMessage:
        if not body or not body.strip():
            raise PermanentError("body must not be empty", provider=PROVIDER, code="empty_body")
        return self._create(to=to, body=body, status_callback=status_callback)

    def send_template(
        self, *, to: str, content_sid: str, variables: Mapping[str, Any], status_callback: str | None = None
    ) -> SentMessage:
        if not is_content_sid(content_sid):
            raise PermanentError(
                "content_sid must be a Content API SID like HX + 32 hex digits",
                provider=PROVIDER,
                code="invalid_content_sid",
            )
        return self._create(
            to=to,
            content_sid=content_sid,
            content_variables=json.dumps({str(k): str(v) for k, v in variables.items()}),
            status_callback=status_callback,
        )

    def _create(self, *, to: str, status_callback: str | None, **fields: Any) -> SentMessage:
        address = whatsapp_address(to)
        sender = self._sender()
        status_callback = status_callback or self.config.status_callback
        if status_callback:
            fields["status_callback"] = status_callback
        with self._errors():
            message = self.messages.create(to=address, from_=sender, **fields)
        logger.info("twilio accepted %s to %s: %s", message.sid, mask_phone(address), message.status)
        return SentMessage(sid=message.sid, status=str(message.status), to=address)

    def find_sent(self, *, to: str, since: datetime, body: str | None = None) -> list[SentMessage]:
        """Messages Twilio accepted from our sender to `to` since `since` (with this body, when
        given), newest first. Twilio's Messages API takes no idempotency key; this lookup is how
        we find out whether an attempt whose outcome we never saw reached it. Which candidate (if
        any) is that attempt is the caller's call: others may be messages it already recorded."""
        address = whatsapp_address(to)
        sender = self._sender()
        with self._errors():
            # Newest first; one page is plenty for one recipient over a few minutes.
            recent = self.messages.list(to=address, from_=sender, limit=50, page_size=50)
        return [
            SentMessage(sid=message.sid, status=str(message.status), to=address)
            for message in recent
            if message.date_created is not None
            and message.date_created >= since
            and (body is None or message.body == body)
        ]

    def _sender(self) -> str:
        # A bad sender is our configuration, not the recipient's fault: PermanentError (the job
        # dead-letters and can be replayed once fixed), never InvalidRecipient.
        try:
            return whatsapp_address(self.config.whatsapp_from, field="TWILIO_WHATSAPP_FROM")
        except InvalidRecipient as exc:
            raise PermanentError(exc.message, provider=PROVIDER, code="invalid_sender") from None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """The one place Twilio failures become platform errors."""
        try:
            with transport_errors(PROVIDER):
                yield
        except TwilioRestException as exc:
            raise twilio_error(exc, self.transport.last_headers()) from exc
        except TwilioException as exc:
            raise PermanentError(mask_phones_in(str(exc)), provider=PROVIDER, code="sdk_error") from exc


def twilio_error(exc: TwilioRestException, headers: Mapping[str, str] | None = None) -> IntegrationError:
    """Map a Twilio API error: invalid recipients and other 4xx are permanent; 5xx and 429 are not."""
    code = exc.code if exc.code is not None else exc.status
    # Twilio's messages quote the number: keep it out of logs and dead letters.
    message = mask_phones_in(str(exc.msg or f"HTTP {exc.status}"))
    if code in INVALID_RECIPIENT_CODES:
        return InvalidRecipient(message, provider=PROVIDER, code=code)
    if code in TRANSIENT_CODES or exc.status >= 500 or exc.status in TRANSIENT_STATUSES:
        retry_after = parse_retry_after((headers or {}).get("Retry-After"))
        return TransientError(message, provider=PROVIDER, code=code, retry_after=retry_after)
    return PermanentError(message, provider=PROVIDER, code=code)


class ConsoleWhatsApp:
    """Local runs without a Twilio account: logs what would be sent, answers like Twilio would."""

    def __init__(self, config: TwilioConfig) -> None:
        self.config = config

    def send_text(self, *, to: str, body: str, status_callback: str | None = None) -> SentMessage:
        if not body or not body.strip():
            raise PermanentError("body must not be empty", provider=PROVIDER, code="empty_body")
        address = whatsapp_address(to)
        sid = fake_id("SM")
        console_log(
            PROVIDER, "send WhatsApp text", sid=sid, to=mask_phone(address), body=mask_phones_in(body)[:80]
        )
        return SentMessage(sid=sid, status="queued", to=address)

    def send_template(
        self, *, to: str, content_sid: str, variables: Mapping[str, Any], status_callback: str | None = None
    ) -> SentMessage:
        address = whatsapp_address(to)
        sid = fake_id("SM")
        console_log(
            PROVIDER,
            "send WhatsApp template",
            sid=sid,
            to=mask_phone(address),
            content_sid=content_sid,
            variables=sorted(variables),
        )
        return SentMessage(sid=sid, status="queued", to=address)

    def find_sent(self, *, to: str, since: datetime, body: str | None = None) -> list[SentMessage]:
        # The console keeps nothing: an interrupted console send is simply logged again.
        return []


def get_whatsapp_client() -> WhatsAppClient:
    """The configured backend (settings.TWILIO_BACKEND), real when Twilio credentials are set."""
    config = TwilioConfig.from_settings()
    cls = backend_class(
        "TWILIO_BACKEND",
        real="integrations.twilio_whatsapp.TwilioWhatsApp",
        console="integrations.twilio_whatsapp.ConsoleWhatsApp",
        configured=bool(config.account_sid and config.auth_token),
    )
    return _client(cls, config)


@lru_cache(maxsize=8)
def _client(cls: type, config: TwilioConfig) -> WhatsAppClient:
    # One client (and connection pool) per configuration; a settings change builds a new one.
    return cls(config)


def verify_status_callback(url: str, params: Mapping[str, Any], signature: str | None) -> None:
    """Check X-Twilio-Signature of a status callback; raise InvalidSignature if it is not Twilio's.

    `url` is the full URL Twilio requested (scheme, host, path and query), `params` the POSTed form."""
    token = settings.TWILIO_AUTH_TOKEN
    if not token:
        raise InvalidSignature(
            "TWILIO_AUTH_TOKEN is not set: cannot verify callbacks", provider=PROVIDER, code="not_configured"
        )
    if not signature or not RequestValidator(token).validate(url, params, signature):
        raise InvalidSignature(
            "X-Twilio-Signature does not match", provider=PROVIDER, code="invalid_signature"
        )


def parse_status_callback(params: Mapping[str, Any]) -> StatusUpdate:
    """The fields of a (verified) status callback that the platform records."""
    sid = str(params.get("MessageSid") or params.get("SmsSid") or "")
    status = str(params.get("MessageStatus") or params.get("SmsStatus") or "")
    if not sid or not status:
        raise PermanentError(
            "MessageSid and MessageStatus are required", provider=PROVIDER, code="invalid_callback"
        )
    raw_code = params.get("ErrorCode")
    return StatusUpdate(sid=sid, status=status, error_code=int(raw_code) if raw_code else None)
