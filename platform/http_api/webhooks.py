"""Provider callbacks: Stripe events (POST /webhooks/stripe) and Twilio message statuses
(POST /webhooks/twilio/status). Each verifies the provider's signature before anything else.

Stripe: a verified payment_intent.succeeded / payment_intent.payment_failed is recorded (by
event id, unique) and handed to tasks.payments.apply_stripe_event through the outbox in the same
transaction, so it survives a broker outage; a replayed event id is acknowledged and enqueues
nothing. Other event types are acknowledged and ignored. Twilio: the status is applied at once
(one row, forward only: messaging.services.apply_twilio_status).
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.stripe_events import APPLIED_EVENT_TYPES
from http_api.errors import error_response
from http_api.models import WebhookEvent
from integrations.errors import InvalidSignature, PermanentError
from integrations.stripe_payments import parse_webhook_event
from integrations.twilio_whatsapp import parse_status_callback, verify_status_callback
from jobs.outbox import enqueue_durably
from messaging.services import apply_twilio_status
from tasks.payments import apply_stripe_event

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    try:
        event = parse_webhook_event(request.body, request.headers.get("Stripe-Signature"))
    except InvalidSignature as exc:
        logger.warning("stripe webhook refused: %s", exc.code)
        return error_response(400, "invalid_signature", "The Stripe-Signature does not verify this payload.")
    if event.type not in APPLIED_EVENT_TYPES:
        return JsonResponse({"received": True, "handled": False})
    try:
        with transaction.atomic():
            record = WebhookEvent.objects.create(provider="stripe", event_id=event.id, event_type=event.type)
            intent = event.object
            job_id = enqueue_durably(
                apply_stripe_event,
                event_id=event.id,
                event_type=event.type,
                payment_intent_id=str(intent.get("id") or ""),
                invoice_id=str((intent.get("metadata") or {}).get("invoice_id") or ""),
                amount_minor=intent.get("amount") if isinstance(intent.get("amount"), int) else None,
            )
            WebhookEvent.objects.filter(pk=record.pk).update(job_id=job_id)
    except IntegrityError:
        # Stripe delivers at least once: this event id was taken in already.
        logger.info("stripe webhook: event %s already received", event.id)
        return JsonResponse({"received": True, "duplicate": True})
    return JsonResponse({"received": True, "job_id": job_id})


@csrf_exempt
@require_POST
def twilio_status_webhook(request: HttpRequest) -> JsonResponse:
    # Twilio signs the URL it called; behind a proxy, Django must be told the public scheme and
    # host (SECURE_PROXY_SSL_HEADER, USE_X_FORWARDED_HOST) for this to match.
    url = request.build_absolute_uri()
    try:
        verify_status_callback(url, request.POST, request.headers.get("X-Twilio-Signature"))
    except InvalidSignature as exc:
        logger.warning("twilio status callback refused: %s", exc.code)
        return error_response(
            403, "invalid_signature", "The X-Twilio-Signature does not verify this request."
        )
    try:
        update = parse_status_callback(request.POST)
    except (PermanentError, ValueError):
        return error_response(
            400, "invalid_callback", "MessageSid and MessageStatus (and a numeric ErrorCode) are required."
        )
    message = apply_twilio_status(
        twilio_sid=update.sid,
        status=update.status,
        error_code=str(update.error_code) if update.error_code is not None else "",
    )
    return JsonResponse(
        {
            "received": True,
            "recorded": message is not None,
            "status": message.status if message is not None else None,
        }
    )
