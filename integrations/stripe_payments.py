"""Stripe PaymentIntents through the official SDK (StripeClient), with deterministic
Idempotency-Keys per invoice attempt, and verification of Stripe's signed webhook events.

    client = get_payments_client()
    intent = client.create_payment_intent(invoice_id=42, attempt=1, amount_minor=125000,
                                          currency="CAD", payment_method="pm_...")
    intent = client.confirm_payment_intent(invoice_id=42, attempt=1, intent_id=intent.id)

The same step of the same attempt always sends the same Idempotency-Key, so a retried or
redelivered job repeats the request Stripe already saw instead of charging twice; a new attempt
(a new PaymentAttempt row) gets new keys.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any, Protocol

import stripe
from django.conf import settings

from integrations import ratelimit
from integrations.backends import backend_class, console_log, fake_id
from integrations.errors import (
    IntegrationError,
    InvalidSignature,
    PaymentDeclined,
    PermanentError,
    TransientError,
)
from integrations.http import parse_retry_after, timeouts

logger = logging.getLogger(__name__)
PROVIDER = "stripe"

# https://docs.stripe.com/currencies#zero-decimal: amounts are in whole units (XAF among them).
ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
_ALPHANUMERIC = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Decimal('1250.50'), 'CAD' -> 125050; Decimal('650000'), 'XAF' -> 650000 (zero-decimal)."""
    code = currency.upper()
    exponent = 0 if code in ZERO_DECIMAL_CURRENCIES else 3 if code in THREE_DECIMAL_CURRENCIES else 2
    minor = (Decimal(amount) * (10**exponent)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if minor < 0:
        raise PermanentError("amount must not be negative", provider=PROVIDER, code="invalid_amount")
    return int(minor)


def idempotency_key(*, invoice_id: int | str, attempt: int, step: str) -> str:
    """The key Stripe sees for one step of one payment attempt: same inputs, same key, always."""
    return f"invoice-{invoice_id}-attempt-{attempt}-{step}"


@dataclass(frozen=True)
class PaymentIntent:
    """The fields of a Stripe PaymentIntent the platform acts on."""

    id: str
    # requires_payment_method | requires_confirmation | requires_action | processing | succeeded | canceled
    status: str
    amount: int
    currency: str
    metadata: dict[str, str] = field(default_factory=dict)
    last_error_code: str | None = None

    @classmethod
    def from_stripe(cls, obj: Any) -> PaymentIntent:
        obj = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
        last_error = obj.get("last_payment_error") or {}
        return cls(
            id=obj["id"],
            status=obj["status"],
            amount=int(obj["amount"]),
            currency=str(obj["currency"]).upper(),
            metadata={str(k): str(v) for k, v in (obj.get("metadata") or {}).items()},
            last_error_code=(last_error.get("decline_code") or last_error.get("code")) or None,
        )


@dataclass(frozen=True)
class WebhookEvent:
    """A verified Stripe event, as plain JSON-safe data (safe to pass to a task)."""

    id: str
    type: str
    object: dict[str, Any]
    created: int


class PaymentsClient(Protocol):
    def create_payment_intent(
        self,
        *,
        invoice_id: int | str,
        attempt: int,
        amount_minor: int,
        currency: str,
        payment_method: str | None = None,
        customer: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PaymentIntent: ...

    def confirm_payment_intent(
        self, *, invoice_id: int | str, attempt: int, intent_id: str, payment_method: str | None = None
    ) -> PaymentIntent: ...

    def retrieve_payment_intent(self, intent_id: str) -> PaymentIntent: ...


@dataclass(frozen=True)
class StripeConfig:
    secret_key: str
    base_url: str
    timeout: tuple[float, float]

    @classmethod
    def from_settings(cls) -> StripeConfig:
        return cls(
            secret_key=settings.STRIPE_SECRET_KEY,
            base_url=settings.STRIPE_BASE_URL.rstrip("/"),
            timeout=timeouts(),
        )


class _StripeTransport(stripe.RequestsClient):
    """The SDK's requests-based client, taking a slot of the shared Stripe rate limit right
    before each request goes out."""

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        ratelimit.acquire(PROVIDER)
        return super().request(method, url, headers, post_data, *args, **kwargs)


class StripePayments:
    """The real backend: StripeClient with an explicit timeout, no network retries, a base-URL seam."""

    def __init__(self, config: StripeConfig) -> None:
        self.config = config
        self.client = stripe.StripeClient(
            config.secret_key,
            base_addresses={"api": config.base_url} if config.base_url else None,
            # Retrying has one home: the task base. The SDK would also invent its own keys.
            max_network_retries=0,
            http_client=_StripeTransport(timeout=config.timeout),
        )

    def create_payment_intent(
        self,
        *,
        invoice_id: int | str,
        attempt: int,
        amount_minor: int,
        currency: str,
        payment_method: str | None = None,
        customer: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PaymentIntent:
        if amount_minor <= 0:
            raise PermanentError("amount_minor must be positive", provider=PROVIDER, code="invalid_amount")
        params: dict[str, Any] = {
            "amount": int(amount_minor),
            "currency": currency.lower(),
            "metadata": {"invoice_id": str(invoice_id), "attempt": str(attempt), **(metadata or {})},
        }
        if payment_method:
            params["payment_method"] = payment_method
        if customer:
            params["customer"] = customer
        key = idempotency_key(invoice_id=invoice_id, attempt=attempt, step="create")
        intent = self._call(
            lambda: self.client.v1.payment_intents.create(params=params, options={"idempotency_key": key})
        )
        logger.info(
            "stripe payment intent %s for invoice %s attempt %s: %s",
            intent.id,
            invoice_id,
            attempt,
            intent.status,
        )
        return intent

    def confirm_payment_intent(
        self, *, invoice_id: int | str, attempt: int, intent_id: str, payment_method: str | None = None
    ) -> PaymentIntent:
        params: dict[str, Any] = {"payment_method": payment_method} if payment_method else {}
        key = idempotency_key(invoice_id=invoice_id, attempt=attempt, step="confirm")
        intent = self._call(
            lambda: self.client.v1.payment_intents.confirm(
                intent_id, params=params, options={"idempotency_key": key}
            )
        )
        logger.info(
            "stripe confirmed %s for invoice %s attempt %s: %s", intent.id, invoice_id, attempt, intent.status
        )
        return intent

    def retrieve_payment_intent(self, intent_id: str) -> PaymentIntent:
        return self._call(lambda: self.client.v1.payment_intents.retrieve(intent_id))

    def _call(self, request: Any) -> PaymentIntent:
        with stripe_errors():
            return PaymentIntent.from_stripe(request())


@contextmanager
def stripe_errors() -> Iterator[None]:
    """The one place Stripe failures become platform errors."""
    try:
        yield
    except stripe.StripeError as exc:
        raise stripe_error(exc) from exc


def stripe_error(exc: stripe.StripeError) -> IntegrationError:
    """Declines, auth, invalid requests and idempotency misuse are permanent; network, 5xx, 429
    and 409 (a concurrent request holding the same object or key) heal with time."""
    status = exc.http_status
    error = exc.error.to_dict() if exc.error is not None else {}
    code = (
        error.get("decline_code")
        or exc.code
        or error.get("code")
        or error.get("type")
        or (status if status else type(exc).__name__)
    )
    message = exc.user_message or type(exc).__name__
    if isinstance(exc, stripe.CardError):
        return PaymentDeclined(message, provider=PROVIDER, code=code)
    if isinstance(exc, stripe.APIConnectionError):
        return TransientError(
            "could not reach Stripe (timeout or connection error)", provider=PROVIDER, code="connection_error"
        )
    if isinstance(exc, stripe.RateLimitError) or status == 429 or status == 409 or (status or 500) >= 500:
        retry_after = parse_retry_after((exc.headers or {}).get("Retry-After"))
        return TransientError(message, provider=PROVIDER, code=code, retry_after=retry_after)
    return PermanentError(message, provider=PROVIDER, code=code)


class ConsolePayments:
    """Local runs without a Stripe account: logs each call, answers with realistic intents that
    succeed on confirmation (the same key returns the same intent, like Stripe)."""

    def __init__(self, config: StripeConfig) -> None:
        self.config = config
        self._by_key: dict[str, PaymentIntent] = {}
        self._by_id: dict[str, PaymentIntent] = {}

    def create_payment_intent(
        self,
        *,
        invoice_id: int | str,
        attempt: int,
        amount_minor: int,
        currency: str,
        payment_method: str | None = None,
        customer: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PaymentIntent:
        key = idempotency_key(invoice_id=invoice_id, attempt=attempt, step="create")
        if key not in self._by_key:
            intent = PaymentIntent(
                id=fake_id("pi_", 24, alphabet=_ALPHANUMERIC),
                status="requires_confirmation" if payment_method else "requires_payment_method",
                amount=int(amount_minor),
                currency=currency.upper(),
                metadata={"invoice_id": str(invoice_id), "attempt": str(attempt), **(metadata or {})},
            )
            self._by_key[key] = self._by_id[intent.id] = intent
        intent = self._by_key[key]
        console_log(
            PROVIDER,
            "create payment intent",
            id=intent.id,
            amount=intent.amount,
            currency=intent.currency,
            idempotency_key=key,
        )
        return intent

    def confirm_payment_intent(
        self, *, invoice_id: int | str, attempt: int, intent_id: str, payment_method: str | None = None
    ) -> PaymentIntent:
        key = idempotency_key(invoice_id=invoice_id, attempt=attempt, step="confirm")
        current = self._by_id.get(intent_id) or PaymentIntent(
            id=intent_id, status="requires_confirmation", amount=0, currency="CAD"
        )
        confirmed = PaymentIntent(
            id=current.id,
            status="succeeded",
            amount=current.amount,
            currency=current.currency,
            metadata=current.metadata,
        )
        self._by_id[intent_id] = confirmed
        console_log(PROVIDER, "confirm payment intent", id=intent_id, idempotency_key=key)
        return confirmed

    def retrieve_payment_intent(self, intent_id: str) -> PaymentIntent:
        intent = self._by_id.get(intent_id)
        if intent is None:
            raise PermanentError(
                f"No such payment_intent: '{intent_id}'", provider=PROVIDER, code="resource_missing"
            )
        return intent


def get_payments_client() -> PaymentsClient:
    """The configured backend (settings.STRIPE_BACKEND), real when STRIPE_SECRET_KEY is set."""
    config = StripeConfig.from_settings()
    cls = backend_class(
        "STRIPE_BACKEND",
        real="integrations.stripe_payments.StripePayments",
        console="integrations.stripe_payments.ConsolePayments",
        configured=bool(config.secret_key),
    )
    return _client(cls, config)


@lru_cache(maxsize=8)
def _client(cls: type, config: StripeConfig) -> PaymentsClient:
    return cls(config)


def parse_webhook_event(payload: bytes | str, sig_header: str | None) -> WebhookEvent:
    """Verify a webhook's Stripe-Signature with STRIPE_WEBHOOK_SECRET and return its event;
    raise InvalidSignature (nothing should be enqueued) when it is not Stripe's or is malformed."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise InvalidSignature(
            "STRIPE_WEBHOOK_SECRET is not set: cannot verify webhooks",
            provider=PROVIDER,
            code="not_configured",
        )
    if not sig_header:
        raise InvalidSignature(
            "Stripe-Signature header is missing", provider=PROVIDER, code="invalid_signature"
        )
    try:
        stripe.Webhook.construct_event(payload, sig_header, secret)
        data = json.loads(payload)
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature(
            "Stripe-Signature does not match", provider=PROVIDER, code="invalid_signature"
        ) from exc
    except ValueError as exc:
        raise InvalidSignature(
            "webhook payload is not valid JSON", provider=PROVIDER, code="invalid_payload"
        ) from exc
    try:
        return WebhookEvent(
            id=str(data["id"]),
            type=str(data["type"]),
            object=dict(data["data"]["object"]),
            created=int(data.get("created") or time.time()),
        )
    except (KeyError, TypeError) as exc:
        raise InvalidSignature(
            "webhook payload is not a Stripe event", provider=PROVIDER, code="invalid_payload"
        ) from exc
