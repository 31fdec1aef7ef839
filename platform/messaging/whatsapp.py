"""Sending WhatsApp messages once: a row is recorded before the Twilio call and its SID after, and a
row recorded as sent is never sent again, whatever runs the job twice.

    outcome = send_whatsapp_once(scope=self.request.id, key="message", to="+14165550123", body="Hi")

A message row is identified by (scope, idempotency_key). The scope is usually the sending job's id:
a redelivered, retried or replayed job finds its own row. For messages due once per subject rather
than once per job (a follow-up per lead per idle period), callers pass a stable scope ("follow-up")
and put the subject and period in `key`.

The row's status is the send guard:

    queued --claim--> sending --Twilio accepted--> sent (SID stored; never sent again)
                        |  \\--Twilio refused the number--> failed (never retried: InvalidRecipient)
                        \\--any other refusal or transient error--> queued again (the retry sends)

The one ambiguous case is a row left `sending`: the process died (SIGKILL, hard time limit)
between claiming the row and storing the SID, or the call timed out after Twilio may have
accepted it. Twilio's Messages API takes no idempotency key, so once the claim's lease has lapsed
(longer than any live call can take) we ask Twilio instead. A text message from our sender to
this recipient with this body, created since the row was recorded (shortly before its first
attempt; a fixed point, so retries and outages do not narrow the search), whose SID no row has
recorded yet, is that attempt: its SID is recorded without sending again
(`platform_whatsapp_reconciled_total`). Messages other rows already recorded are left out: another
job may legitimately have sent the same text to the same number. A template message is never
matched (Twilio returns the rendered text, not the template, and recipient and time alone prove
nothing). When nothing matches the message is sent again, logged as a warning and counted in
`platform_whatsapp_ambiguous_resends_total`: at-least-once, because losing a notification about
money or cargo is the worse failure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from prometheus_client import Counter

from identifiers import mask_phone
from integrations.errors import IntegrationError, InvalidRecipient
from integrations.twilio_whatsapp import get_whatsapp_client
from jobs.errors import DeferReason, Deferred, InvalidArgument
from messaging.models import WhatsAppMessage
from messaging.services import record_whatsapp_message

logger = logging.getLogger(__name__)

AMBIGUOUS_RESENDS = Counter(
    "platform_whatsapp_ambiguous_resends_total",
    "WhatsApp messages sent again because an earlier attempt may or may not have reached Twilio.",
)
RECONCILED = Counter(
    "platform_whatsapp_reconciled_total",
    "Interrupted WhatsApp sends found already accepted by Twilio, so not sent again.",
)

# Rows that reached Twilio: never sent again.
DONE_STATUSES = (
    WhatsAppMessage.Status.SENT,
    WhatsAppMessage.Status.DELIVERED,
    WhatsAppMessage.Status.READ,
    WhatsAppMessage.Status.UNDELIVERED,
)
# Rows still to send: queued, or sending under a claim that may have lapsed.
PENDING_STATUSES = (WhatsAppMessage.Status.QUEUED, WhatsAppMessage.Status.SENDING)
# error_code of a row released after a timeout: the call may have reached Twilio.
TIMEOUT_CODE = "timeout"
# Twilio's date_created has whole seconds and its clock is not ours: look this far before the row.
CLOCK_SLACK = timedelta(seconds=5)


class SendStatus(StrEnum):
    """What one send did; the value is the `status` of the sending job's result (docs/contract.md
    lists these words). A row another execution is sending right now is not an outcome: deliver
    raises Deferred(HELD_ELSEWHERE) and the job comes back to it."""

    SENT = "sent"  # sent now
    # Sent earlier (by an earlier run of the job, or found already accepted by Twilio): not sent
    # again. "skipped" is the word job results have always used for it.
    ALREADY_SENT = "skipped"
    CANCELLED = "cancelled"  # its bulk batch was cancelled before it was sent: never sent
    FAILED = "failed"  # Twilio will never deliver to this number


# Why a job whose recipient Twilio refused cannot succeed, whichever argument led to the number.
REFUSED_NUMBER = "Twilio refused the recipient's number (not a reachable WhatsApp number)"


@dataclass(frozen=True)
class SendOutcome:
    status: SendStatus
    message_id: int
    sid: str | None = None
    resent_after_ambiguity: bool = False

    def raise_if_refused(self, *, argument: str) -> SendOutcome:
        """This outcome, unless Twilio refused the number for good: then the job that asked cannot
        succeed, and fails naming `argument`, the job argument the number came from."""
        if self.status == SendStatus.FAILED:
            raise InvalidArgument(argument, REFUSED_NUMBER)
        return self


def sending_lease() -> timedelta:
    """How long a claim protects a row: longer than the slowest call that can still succeed."""
    return timedelta(seconds=settings.INTEGRATION_CONNECT_TIMEOUT + settings.INTEGRATION_READ_TIMEOUT + 5)


def send_whatsapp_once(
    *,
    scope: str,
    key: str,
    to: str,
    body: str = "",
    template: str = "",
    variables: dict | None = None,
    vehicle_id: int | None = None,
) -> SendOutcome:
    """Record the message for (scope, key) if new, then deliver it unless it was sent already."""
    try:
        message, _ = record_whatsapp_message(
            to=to,
            scope=scope,
            idempotency_key=key,
            body=body,
            template=template,
            variables=variables,
            vehicle_id=vehicle_id,
        )
    except ValidationError as exc:
        field = next(iter(getattr(exc, "message_dict", {}) or {"to": None}))
        raise InvalidArgument(field, "; ".join(exc.messages)) from exc
    return deliver(message)


def deliver(message: WhatsAppMessage) -> SendOutcome:
    """Send one recorded message through Twilio unless it was sent already: one pass through the
    state machine of the module docstring.

    Raises the client's errors other than InvalidRecipient (the row is released for the retry),
    and Deferred(HELD_ELSEWHERE) when another execution holds a fresh claim on the row."""
    message.refresh_from_db()
    settled = _settled(message)
    if settled is not None:
        return settled
    # A row left `sending`, or released after a timeout: an earlier attempt may have reached Twilio.
    ambiguous = message.status == WhatsAppMessage.Status.SENDING or message.error_code == TIMEOUT_CODE
    _claim_or_defer(message)  # queued (or a lapsed sending) -> sending
    client = get_whatsapp_client()  # asks for status callbacks when TWILIO_STATUS_CALLBACK_URL is set
    if ambiguous:
        reconciled = _reconcile(client, message)  # sending -> sent, if Twilio has the earlier attempt
        if reconciled is not None:
            return reconciled
        AMBIGUOUS_RESENDS.inc()
        logger.warning(
            "whatsapp message %s to %s: an earlier attempt did not reach Twilio as far "
            "as it can tell; sending again",
            message.pk,
            mask_phone(message.to),
        )
    return _send(client, message, ambiguous=ambiguous)


def _settled(message: WhatsAppMessage) -> SendOutcome | None:
    """The outcome of a row that must not be sent again (sent, or refused for good), else None."""
    if message.status in DONE_STATUSES or message.twilio_sid:
        return SendOutcome(SendStatus.ALREADY_SENT, message.pk, message.twilio_sid)
    if message.status == WhatsAppMessage.Status.FAILED:
        # Twilio refused this number for good (InvalidRecipient): sending again cannot help.
        return SendOutcome(SendStatus.FAILED, message.pk)
    if message.status == WhatsAppMessage.Status.CANCELLED:
        return SendOutcome(SendStatus.CANCELLED, message.pk)  # its batch was cancelled (messaging/batches.py)
    return None


def _claim_or_defer(message: WhatsAppMessage) -> None:
    """Move the row to `sending` for this execution, or raise Deferred(HELD_ELSEWHERE) while
    another one holds it (its claim is fresh, or it claimed the row since we read it)."""
    if message.status == WhatsAppMessage.Status.SENDING:
        held_until = message.updated_at + sending_lease()
        if held_until > timezone.now():
            wait = (held_until - timezone.now()).total_seconds()
            raise Deferred(
                "another execution is sending this message",
                reason=DeferReason.HELD_ELSEWHERE,
                retry_after=max(wait, 0.5),
            )
    if not _claim(message):
        # Someone else claimed it between our read and our update: look again next time.
        raise Deferred(
            "another execution claimed this message", reason=DeferReason.HELD_ELSEWHERE, retry_after=1.0
        )


def _send(client, message: WhatsAppMessage, *, ambiguous: bool) -> SendOutcome:
    """The Twilio call of a claimed row: sending -> sent, failed (number refused) or queued again."""
    try:
        if message.template:
            sent = client.send_template(
                to=message.to, content_sid=message.template, variables=message.variables or {}
            )
        else:
            sent = client.send_text(to=message.to, body=message.body)
    except InvalidRecipient as exc:
        _finish(
            message,
            status=WhatsAppMessage.Status.FAILED,
            error_code=str(exc.code or ""),
            error_message=exc.message,
        )
        logger.info(
            "whatsapp message %s: Twilio refused %s (%s)", message.pk, mask_phone(message.to), exc.code
        )
        return SendOutcome(SendStatus.FAILED, message.pk, resent_after_ambiguity=ambiguous)
    except IntegrationError as exc:
        # Not sent (a refusal, our rate limit, a 5xx), or maybe sent (a timeout: remembered,
        # so the resend is counted as ambiguous). Either way the retry may send it.
        _finish(
            message,
            status=WhatsAppMessage.Status.QUEUED,
            error_code=str(exc.code or "")[:20],
            error_message=exc.message,
        )
        raise
    _mark_sent(message, sid=sent.sid)
    logger.info("whatsapp message %s sent to %s as %s", message.pk, mask_phone(message.to), sent.sid)
    return SendOutcome(SendStatus.SENT, message.pk, sent.sid, resent_after_ambiguity=ambiguous)


def _reconcile(client, message: WhatsAppMessage) -> SendOutcome | None:
    """If Twilio already accepted the interrupted attempt, record its SID and report it already
    sent."""
    if message.template:
        return None  # nothing but recipient and time to match on: not evidence (module doc)
    # Every attempt began after the row was recorded. Not updated_at: each failed lookup or
    # re-claim moves it forward, and after a long outage the first attempt would fall outside.
    since = message.created_at - CLOCK_SLACK
    try:
        candidates = client.find_sent(to=message.to, since=since, body=message.body)
    except IntegrationError:
        _finish(
            message,
            status=WhatsAppMessage.Status.QUEUED,
            error_code=TIMEOUT_CODE,
            error_message="could not ask Twilio whether an interrupted send reached it",
        )
        raise
    recorded = set(
        WhatsAppMessage.objects.filter(twilio_sid__in=[c.sid for c in candidates]).values_list(
            "twilio_sid", flat=True
        )
    )
    earlier = None
    for candidate in (c for c in candidates if c.sid not in recorded):
        try:
            with transaction.atomic():
                # Another row reconciling at the same moment may take this SID first.
                _mark_sent(message, sid=candidate.sid)
        except IntegrityError:
            continue
        earlier = candidate
        break
    if earlier is None:
        return None
    RECONCILED.inc()
    logger.info(
        "whatsapp message %s to %s: the interrupted send had reached Twilio as %s; not resent",
        message.pk,
        mask_phone(message.to),
        earlier.sid,
    )
    return SendOutcome(SendStatus.ALREADY_SENT, message.pk, earlier.sid, resent_after_ambiguity=False)


def _mark_sent(message: WhatsAppMessage, *, sid: str) -> None:
    """sending -> sent with Twilio's SID (unique: IntegrityError if another row holds it)."""
    now = timezone.now()
    WhatsAppMessage.objects.filter(pk=message.pk, twilio_sid__isnull=True).update(
        status=WhatsAppMessage.Status.SENT,
        twilio_sid=sid,
        sent_at=now,
        error_code="",
        error_message="",
        updated_at=now,
    )


def _claim(message: WhatsAppMessage) -> bool:
    # Compare-and-set on (status, updated_at): exactly one execution moves the row to sending.
    # Committed at once (autocommit), so a crash during the call leaves the row visibly "sending".
    return bool(
        WhatsAppMessage.objects.filter(
            pk=message.pk, status=message.status, updated_at=message.updated_at, twilio_sid__isnull=True
        ).update(status=WhatsAppMessage.Status.SENDING, updated_at=timezone.now())
    )


def _finish(message: WhatsAppMessage, *, status: str, error_code: str, error_message: str) -> None:
    WhatsAppMessage.objects.filter(pk=message.pk, status=WhatsAppMessage.Status.SENDING).update(
        status=status,
        error_code=error_code[:20],
        error_message=error_message[:2000],
        updated_at=timezone.now(),
    )


def pending_messages(*, scope: str):
    """Rows of a scope (a job, a bulk batch) still to send (PENDING_STATUSES)."""
    return WhatsAppMessage.objects.filter(scope=scope, status__in=PENDING_STATUSES).order_by("pk")
