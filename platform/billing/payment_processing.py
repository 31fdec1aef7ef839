"""Moving an invoice forward through Stripe, one step per call, each step once.

    advance_invoice_payment(invoice_id=42, actor="task:...")   # -> PaymentStep(PaymentOutcome.PAID)

An invoice's payment is a PaymentAttempt (number n) and one Stripe PaymentIntent:

    open --create intent (key invoice-42-attempt-n-create)--> processing
    processing, intent requires_confirmation (the buyer attached a card) --confirm (key ...-confirm)-->
    processing, intent succeeded --> paid (the attempt records the payment; the deal is marked paid)
    processing, intent declined or canceled --> failed (the buyer is asked to pay again)

Each Stripe call carries the attempt's deterministic Idempotency-Key, so a rerun of the same step
repeats the request Stripe already answered instead of charging again. The invoice row is locked
while its state is decided and written, and a paid (or void) invoice is never touched again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.db.models import Max

from audit.services import record_audit
from billing.models import Invoice, PaymentAttempt
from billing.services import transition_invoice
from integrations.errors import PaymentDeclined
from integrations.stripe_payments import PaymentIntent, get_payments_client, idempotency_key, to_minor_units
from jobs.errors import UnexpectedState
from marketplace.models import Deal
from marketplace.services import transition_deal

logger = logging.getLogger(__name__)

FINAL_INTENT_STATUSES = ("succeeded", "canceled")


class PaymentOutcome(StrEnum):
    """What one payment step or one Stripe event did to an invoice (the jobs' results say it)."""

    PAID = "paid"  # the payment was recorded now
    ALREADY_PAID = "already_paid"  # it had been recorded before: nothing changed
    FAILED = "failed"  # the attempt was declined or canceled: the buyer is asked to pay again
    WAITING = "waiting"  # Stripe waits for the buyer or the bank (PaymentStep.stripe_status says which)
    NOT_PAYABLE = "not_payable"  # the invoice awaits no payment (draft, void, failed)
    UNCHANGED = "unchanged"  # a failure of an attempt that no longer decides the invoice
    ALREADY_APPLIED = "already_applied"  # this Stripe event was applied by an earlier run


@dataclass(frozen=True)
class PaymentStep:
    """What advance_invoice_payment did, and the status that explains it when there is one."""

    outcome: PaymentOutcome
    stripe_status: str = ""  # the payment intent's, when WAITING
    invoice_status: str = ""  # the invoice's, when NOT_PAYABLE

    def as_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {"outcome": self.outcome}
        if self.stripe_status:
            result["stripe_status"] = self.stripe_status
        if self.invoice_status:
            result["invoice_status"] = self.invoice_status
        return result


def advance_invoice_payment(*, invoice_id: int, actor: str) -> PaymentStep:
    """Take the next Stripe step for one invoice; returns what happened (for the job's result)."""
    invoice = Invoice.objects.get(pk=invoice_id)
    if invoice.status == Invoice.Status.PAID:
        return PaymentStep(PaymentOutcome.ALREADY_PAID)
    if invoice.status not in (Invoice.Status.OPEN, Invoice.Status.PROCESSING):
        return PaymentStep(PaymentOutcome.NOT_PAYABLE, invoice_status=invoice.status)
    attempt = _current_attempt(invoice_id=invoice_id)
    client = get_payments_client()
    if not attempt.stripe_payment_intent_id:
        intent = client.create_payment_intent(
            invoice_id=invoice_id,
            attempt=attempt.number,
            amount_minor=to_minor_units(attempt.amount, attempt.currency),
            currency=attempt.currency,
            metadata={"invoice_number": invoice.number},
        )
        _record_intent(invoice_id=invoice_id, attempt_id=attempt.pk, intent=intent, actor=actor)
    else:
        intent = client.retrieve_payment_intent(attempt.stripe_payment_intent_id)
    if intent.status == "requires_confirmation":
        try:
            intent = client.confirm_payment_intent(
                invoice_id=invoice_id, attempt=attempt.number, intent_id=intent.id
            )
        except PaymentDeclined as exc:
            # A business outcome, not an error to retry: the attempt failed, the buyer pays again.
            return _record_failure(
                invoice_id=invoice_id,
                attempt_id=attempt.pk,
                code=str(exc.code or "declined"),
                message=exc.message,
                actor=actor,
            )
    if intent.status == "succeeded":
        outcome = record_payment(
            invoice_id=invoice_id,
            payment_intent_id=intent.id,
            amount_minor=intent.amount,
            actor=actor,
            attempt_id=attempt.pk,
        )
        return PaymentStep(outcome)
    if intent.status == "canceled" or (intent.status == "requires_payment_method" and intent.last_error_code):
        return _record_failure(
            invoice_id=invoice_id,
            attempt_id=attempt.pk,
            code=intent.last_error_code or intent.status,
            message="",
            actor=actor,
        )
    _update_attempt_status(attempt_id=attempt.pk, status=intent.status)
    return PaymentStep(PaymentOutcome.WAITING, stripe_status=intent.status)


def _current_attempt(*, invoice_id: int) -> PaymentAttempt:
    """The unfinished attempt of the invoice, or a new one (numbered after the last)."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        latest = invoice.attempts.order_by("-number").first()
        if latest is not None and latest.stripe_status not in FINAL_INTENT_STATUSES and not latest.error_code:
            return latest
        number = (invoice.attempts.aggregate(n=Max("number"))["n"] or 0) + 1
        return PaymentAttempt.objects.create(
            invoice=invoice,
            number=number,
            amount=invoice.amount,
            currency=invoice.currency,
            idempotency_key=idempotency_key(invoice_id=invoice_id, attempt=number, step="create"),
        )


def _record_intent(*, invoice_id: int, attempt_id: int, intent: PaymentIntent, actor: str) -> None:
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        PaymentAttempt.objects.filter(pk=attempt_id).update(
            stripe_payment_intent_id=intent.id, stripe_status=intent.status
        )
        if invoice.stripe_payment_intent_id != intent.id:
            Invoice.objects.filter(pk=invoice_id).update(stripe_payment_intent_id=intent.id)
        if invoice.status == Invoice.Status.OPEN:
            transition_invoice(invoice_id=invoice_id, to=Invoice.Status.PROCESSING, actor=actor)


def _update_attempt_status(*, attempt_id: int, status: str) -> None:
    PaymentAttempt.objects.filter(pk=attempt_id).exclude(stripe_status__in=FINAL_INTENT_STATUSES).update(
        stripe_status=status
    )


def record_payment(
    *,
    invoice_id: int,
    payment_intent_id: str,
    amount_minor: int | None,
    actor: str,
    attempt_id: int | None = None,
) -> PaymentOutcome:
    """Record a succeeded Stripe payment once: the invoice is paid, the payment audited
    ("payment_recorded") and the deal marked paid when none of its invoices is still owed, which
    is what lets the broker's commission be computed. The one service both the payments task and
    the Stripe webhook call. Returns PAID, or ALREADY_PAID for every caller after the first;
    UnexpectedState (a dead letter for a person) for a payment of a draft or void invoice."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.status == Invoice.Status.PAID:
            return PaymentOutcome.ALREADY_PAID
        if invoice.status in (Invoice.Status.VOID, Invoice.Status.DRAFT):
            raise UnexpectedState(
                f"invoice {invoice_id}: a payment succeeded for a {invoice.status} invoice; needs a person"
            )
        attempts = (
            PaymentAttempt.objects.filter(pk=attempt_id)
            if attempt_id is not None
            else PaymentAttempt.objects.filter(stripe_payment_intent_id=payment_intent_id)
        )
        attempts.update(stripe_status="succeeded", error_code="")
        if invoice.status == Invoice.Status.FAILED:
            # failed -> paid is not a direct transition: the payment went back in flight, then landed.
            transition_invoice(invoice_id=invoice_id, to=Invoice.Status.PROCESSING, actor=actor)
        transition_invoice(invoice_id=invoice_id, to=Invoice.Status.PAID, actor=actor)
        record_audit(
            actor=actor,
            action="payment_recorded",
            obj=invoice,
            changes={"payment_intent": [None, payment_intent_id], "amount_minor": [None, amount_minor]},
        )
        deal = Deal.objects.select_for_update().get(pk=invoice.deal_id)
        if (
            deal.status == Deal.Status.INVOICED
            and not deal.invoices.exclude(status__in=(Invoice.Status.PAID, Invoice.Status.VOID)).exists()
        ):
            transition_deal(deal_id=deal.pk, to=Deal.Status.PAID, actor=actor)
    logger.info("invoice %s paid (payment intent %s)", invoice_id, payment_intent_id)
    return PaymentOutcome.PAID


def _record_failure(*, invoice_id: int, attempt_id: int, code: str, message: str, actor: str) -> PaymentStep:
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        PaymentAttempt.objects.filter(pk=attempt_id).update(
            stripe_status="requires_payment_method", error_code=code[:100], error_message=message
        )
        if invoice.status == Invoice.Status.PROCESSING:
            transition_invoice(invoice_id=invoice_id, to=Invoice.Status.FAILED, actor=actor)
    logger.info("invoice %s payment attempt declined: %s", invoice_id, code)
    return PaymentStep(PaymentOutcome.FAILED)
