"""A fake Stripe API for PaymentIntents (/v1/payment_intents...), with Stripe's bearer auth,
error shapes and idempotency semantics (same key + same parameters: the first answer replayed;
same key + other parameters: idempotency_error). Also signs webhook payloads like Stripe."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
import time
from urllib.parse import parse_qsl

from tests.support.fakes.server import FakeServer, Recorded, Reply

SECRET_KEY = "sk_test_fake0123456789abcdefghijklmn"
WEBHOOK_SECRET = "whsec_fake0123456789abcdefghijklmnop"
DECLINED_PAYMENT_METHOD = "pm_card_visa_chargeDeclined"
_ALNUM = string.ascii_letters + string.digits


def stripe_error(type_: str, message: str, **extra) -> dict:
    return {"error": {"type": type_, "message": message, **extra}}


def sign_webhook(payload: bytes | str, secret: str = WEBHOOK_SECRET, *, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send for `payload`."""
    body = payload.decode() if isinstance(payload, bytes) else payload
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def _nested(form_pairs: list[tuple[str, str]]) -> dict:
    """'metadata[invoice_id]=42' -> {'metadata': {'invoice_id': '42'}} (one level, as we use)."""
    result: dict = {}
    for key, value in form_pairs:
        if "[" in key:
            outer, inner = key.split("[", 1)
            result.setdefault(outer, {})[inner.rstrip("]")] = value
        else:
            result[key] = value
    return result


class FakeStripe(FakeServer):
    name = "stripe"

    def __init__(self, *, secret_key: str = SECRET_KEY) -> None:
        self.secret_key = secret_key
        self.intents: dict[str, dict] = {}
        self._idempotent: dict[str, tuple[str, Reply]] = {}
        super().__init__()

    def setup_routes(self) -> None:
        self.route("POST", r"/v1/payment_intents", self._create)
        self.route("POST", r"/v1/payment_intents/(?P<id>pi_\w+)/confirm", self._confirm)
        self.route("GET", r"/v1/payment_intents/(?P<id>pi_\w+)", self._retrieve)

    def settings(self) -> dict[str, str]:
        return {
            "STRIPE_SECRET_KEY": self.secret_key,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_BASE_URL": self.url,
            "STRIPE_BACKEND": "",
        }

    def idempotency_keys(self, path_contains: str = "/v1/payment_intents") -> list[str | None]:
        """The Idempotency-Key of every POST the fake received, in order."""
        return [r.header("Idempotency-Key") for r in self.requests_to(path_contains, "POST")]

    # The real API answers an idempotent replay from its store, before anything else.
    def _dispatch(self, recorded: Recorded) -> Reply:
        if recorded.header("Authorization") != f"Bearer {self.secret_key}":
            return Reply(401, stripe_error("invalid_request_error", "Invalid API Key provided: sk_test_****"))
        key = recorded.header("Idempotency-Key")
        if recorded.method != "POST" or not key:
            return super()._dispatch(recorded)
        fingerprint = f"{recorded.path}?{sorted(parse_qsl(recorded.body.decode()))}"
        if key in self._idempotent:
            first_fingerprint, first_reply = self._idempotent[key]
            if first_fingerprint != fingerprint:
                return Reply(
                    400,
                    stripe_error(
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters they were "
                        f"first used with. Try using a key other than '{key}' if you meant to execute a "
                        "different request.",
                    ),
                )
            return Reply(
                first_reply.status, first_reply.body, {**first_reply.headers, "Idempotent-Replayed": "true"}
            )
        reply = super()._dispatch(recorded)
        if reply.status < 500:
            self._idempotent[key] = (fingerprint, reply)
        return reply

    def _create(self, request: Recorded, match) -> Reply:
        params = _nested(parse_qsl(request.body.decode()))
        try:
            amount = int(params.get("amount", ""))
        except ValueError:
            return Reply(
                400,
                stripe_error(
                    "invalid_request_error",
                    "Missing required param: amount.",
                    param="amount",
                    code="parameter_missing",
                ),
            )
        if not params.get("currency"):
            return Reply(
                400,
                stripe_error(
                    "invalid_request_error",
                    "Missing required param: currency.",
                    param="currency",
                    code="parameter_missing",
                ),
            )
        intent_id = "pi_" + "".join(secrets.choice(_ALNUM) for _ in range(24))
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "currency": params["currency"],
            "status": "requires_confirmation" if params.get("payment_method") else "requires_payment_method",
            "payment_method": params.get("payment_method"),
            "customer": params.get("customer"),
            "metadata": params.get("metadata", {}),
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "created": int(time.time()),
            "livemode": False,
            "last_payment_error": None,
        }
        self.intents[intent_id] = intent
        return Reply(200, intent)

    def _confirm(self, request: Recorded, match) -> Reply:
        intent = self.intents.get(match["id"])
        if intent is None:
            return self._missing(match["id"])
        params = _nested(parse_qsl(request.body.decode()))
        payment_method = params.get("payment_method") or intent.get("payment_method")
        if not payment_method:
            return Reply(
                400,
                stripe_error(
                    "invalid_request_error",
                    "You cannot confirm this PaymentIntent because it's missing a payment method.",
                    code="payment_intent_unexpected_state",
                ),
            )
        intent["payment_method"] = payment_method
        if "chargeDeclined" in payment_method:
            error = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
                "payment_method": {"id": payment_method},
            }
            intent.update(status="requires_payment_method", last_payment_error=error)
            return Reply(402, {"error": {**error, "payment_intent": intent}})
        intent.update(status="succeeded", last_payment_error=None)
        return Reply(200, intent)

    def _retrieve(self, request: Recorded, match) -> Reply:
        intent = self.intents.get(match["id"])
        return Reply(200, intent) if intent else self._missing(match["id"])

    @staticmethod
    def _missing(intent_id: str) -> Reply:
        return Reply(
            404,
            stripe_error(
                "invalid_request_error",
                f"No such payment_intent: '{intent_id}'",
                code="resource_missing",
                param="intent",
            ),
        )


def webhook_payload(event_type: str = "payment_intent.succeeded", obj: dict | None = None) -> bytes:
    """A Stripe event body as Stripe posts it."""
    event = {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "api_version": "2024-06-20",
        "livemode": False,
        "data": {"object": obj or {"id": "pi_test", "object": "payment_intent", "status": "succeeded"}},
    }
    return json.dumps(event).encode()
