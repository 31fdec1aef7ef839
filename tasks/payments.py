"""Payment jobs: invoices moved forward through Stripe, reminders of overdue ones, and verified
Stripe webhook events applied to their invoices."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit.subjects import fetch_subject
from billing.models import Invoice
from billing.payment_processing import PaymentOutcome, advance_invoice_payment
from billing.reminders import send_payment_reminders as remind_overdue_invoices
from billing.selectors import invoices_awaiting_payment
from billing.stripe_events import PaymentEventType
from billing.stripe_events import apply_stripe_event as apply_event
from jobs.arguments import RowId, json_int
from jobs.ledger import claim_effect
from jobs.outbox import enqueue_durably
from jobs.outcomes import NothingDone, nothing_done
from jobs.task_base import platform_task
from jobs.task_names import TaskName


@platform_task(name=TaskName.PROCESS_PENDING_PAYMENTS, soft_time_limit=120, time_limit=150)
def process_pending_payments(self) -> dict[str, int]:
    """Fan out one durable job per invoice awaiting payment (open, or with a payment in flight).

    Each fan-out is claimed in the ledger with its outbox row: a redelivery of this job enqueues
    nothing twice, and a crash after the commit loses nothing (the relay publishes it)."""
    enqueued = 0
    for invoice_id in list(invoices_awaiting_payment().values_list("pk", flat=True)):
        with transaction.atomic():
            if claim_effect(f"payments:advance:invoice:{invoice_id}", job_id=self.request.id):
                enqueue_durably(process_invoice_payment, invoice_id=invoice_id)
                enqueued += 1
    return {"enqueued": enqueued}


@platform_task(name=TaskName.PROCESS_INVOICE_PAYMENT, soft_time_limit=60, time_limit=90)
def process_invoice_payment(self, invoice_id: RowId) -> dict:
    """Take the next Stripe step for one invoice (billing/payment_processing.py)."""
    invoice = fetch_subject(Invoice, invoice_id, argument="invoice_id")
    if invoice is None:
        return nothing_done(NothingDone.DELETED, invoice_id=invoice_id)
    step = advance_invoice_payment(invoice_id=invoice.pk, actor=self.actor)
    return {"invoice_id": invoice.pk, **step.as_result()}


@platform_task(name=TaskName.SEND_PAYMENT_REMINDERS, soft_time_limit=120, time_limit=150)
def send_payment_reminders(self) -> dict[str, int]:
    """Remind buyers of overdue invoices: at most one reminder per invoice per day."""
    return remind_overdue_invoices(today=timezone.localdate(), job_id=self.request.id, actor=self.actor)


@platform_task(name=TaskName.APPLY_STRIPE_EVENT, soft_time_limit=30, time_limit=60)
def apply_stripe_event(
    self,
    event_id: str,
    event_type: PaymentEventType,
    payment_intent_id: str,
    invoice_id: str = "",
    amount_minor: json_int(ge=0) | None = None,
) -> PaymentOutcome:
    """Pay or fail the invoice of one verified Stripe payment event, once (enqueued durably by
    the Stripe webhook)."""
    return apply_event(
        event_id=event_id,
        event_type=event_type,
        payment_intent_id=payment_intent_id,
        invoice_id=invoice_id,
        amount_minor=amount_minor,
        job_id=self.request.id,
    )
