"""Apply a verified Stripe payment event to its invoice, once (the service behind
tasks.payments.apply_stripe_event).

Stripe's word is final about money: payment_intent.succeeded records the payment through
billing.payment_processing.record_payment, the same service the payments task uses (invoice paid,
payment audited, deal marked paid); payment_intent.payment_failed fails the invoice only when the
failed intent is the invoice's current one and its payment is in flight, so a late failure of an
old attempt never fails the current payment nor undoes one, and never moves a succeeded attempt
backwards. Each event is claimed in the effect ledger in the same transaction as the
invoice change; the webhook's unique event id already stops replays from being enqueued.
"""

from __future__ import annotations

import logging
from typing import Literal, get_args

from django.db import transaction

from billing.models import Invoice, PaymentAttempt
from billing.payment_processing import PaymentOutcome, record_payment
from billing.services import transition_invoice
from jobs.errors import NotReadyYet
from jobs.ledger import claim_effect

logger = logging.getLogger(__name__)
ACTOR = "stripe-webhook"
# The Stripe event types applied to invoices: the webhook enqueues these and ignores the rest; the
# task's argument type refuses any other.
PaymentEventType = Literal["payment_intent.succeeded", "payment_intent.payment_failed"]
SUCCEEDED, FAILED = get_args(PaymentEventType)
APPLIED_EVENT_TYPES = frozenset((SUCCEEDED, FAILED))


def find_invoice_id(*, payment_intent_id: str, invoice_id: str = "") -> int | None:
    """The invoice this intent pays: by the intent id we stored, else the invoice_id metadata
    our payments integration puts on every intent."""
    if payment_intent_id:
        found = Invoice.objects.filter(stripe_payment_intent_id=payment_intent_id).values_list(
            "pk", flat=True
        )
        if found:
            return found[0]
        found = PaymentAttempt.objects.filter(stripe_payment_intent_id=payment_intent_id).values_list(
            "invoice_id", flat=True
        )
        if found:
            return found[0]
    if invoice_id.isdigit() and Invoice.objects.filter(pk=int(invoice_id)).exists():
        return int(invoice_id)
    return None


def apply_stripe_event(
    *,
    event_id: str,
    event_type: PaymentEventType,
    payment_intent_id: str,
    invoice_id: str = "",
    amount_minor: int | None = None,
    job_id: str,
) -> PaymentOutcome:
    """Apply one event; returns what happened (PAID, ALREADY_PAID, FAILED, UNCHANGED,
    ALREADY_APPLIED)."""
    found = find_invoice_id(payment_intent_id=payment_intent_id, invoice_id=invoice_id)
    if found is None:
        # The payments job may not have committed the intent id yet: worth a few retries, then
        # a dead letter for ops to look at (money moved for an invoice we cannot find).
        raise NotReadyYet(f"no invoice for payment intent {payment_intent_id!r} yet")
    with transaction.atomic():
        if not claim_effect(f"stripe-event:{event_id}", job_id=job_id):
            return PaymentOutcome.ALREADY_APPLIED
        if event_type == SUCCEEDED:
            outcome = record_payment(
                invoice_id=found, payment_intent_id=payment_intent_id, amount_minor=amount_minor, actor=ACTOR
            )
        else:
            outcome = _fail(invoice_id=found, payment_intent_id=payment_intent_id)
    logger.info("stripe event %s (%s) on invoice %s: %s", event_id, event_type, found, outcome)
    return outcome


def _fail(*, invoice_id: int, payment_intent_id: str) -> PaymentOutcome:
    invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
    # A succeeded attempt is final: a failure event for its intent arriving late changes nothing.
    PaymentAttempt.objects.filter(stripe_payment_intent_id=payment_intent_id).exclude(
        stripe_status="succeeded"
    ).update(stripe_status="requires_payment_method")
    # Only the invoice's current intent decides it: a failure of an older attempt's intent is history.
    if invoice.stripe_payment_intent_id != payment_intent_id or invoice.status != Invoice.Status.PROCESSING:
        return PaymentOutcome.UNCHANGED
    transition_invoice(invoice_id=invoice.pk, to=Invoice.Status.FAILED, actor=ACTOR)
    return PaymentOutcome.FAILED
