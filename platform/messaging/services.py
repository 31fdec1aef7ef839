"""Writes of WhatsApp message rows: record before sending, then apply Twilio's statuses."""

from django.db import transaction

from messaging.models import WhatsAppMessage


def record_whatsapp_message(
    *,
    to: str,
    scope: str,
    idempotency_key: str,
    body: str = "",
    template: str = "",
    variables: dict | None = None,
    vehicle_id: int | None = None,
) -> tuple[WhatsAppMessage, bool]:
    """The row for (scope, idempotency_key), created queued if new. Validated first: an invalid
    number raises ValidationError on "to". Returns (message, created)."""
    candidate = WhatsAppMessage(
        to=to,
        body=body,
        template=template,
        variables=variables or {},
        scope=scope,
        idempotency_key=idempotency_key,
        vehicle_id=vehicle_id,
    )
    candidate.full_clean(validate_unique=False, validate_constraints=False)
    return WhatsAppMessage.objects.get_or_create(
        scope=scope,
        idempotency_key=idempotency_key,
        defaults={
            "to": to,
            "body": body,
            "template": template,
            "variables": variables or {},
            "vehicle_id": vehicle_id,
        },
    )


def apply_twilio_status(
    *,
    twilio_sid: str,
    status: str,
    error_code: str = "",
    error_message: str = "",
) -> WhatsAppMessage | None:
    """Apply one status callback. Callbacks arrive out of order, so a status only moves a
    message forward (WhatsAppMessage.PROGRESS); None when no message has this SID."""
    if status not in WhatsAppMessage.Status.values:
        return None
    with transaction.atomic():
        message = WhatsAppMessage.objects.select_for_update().filter(twilio_sid=twilio_sid).first()
        if message is None:
            return None
        if WhatsAppMessage.PROGRESS[status] > WhatsAppMessage.PROGRESS[message.status]:
            message.status = status
            if error_code or error_message:
                message.error_code, message.error_message = error_code[:20], error_message
            message.save(update_fields=["status", "error_code", "error_message", "updated_at"])
    return message
