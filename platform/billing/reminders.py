"""Payment reminders: at most one per overdue invoice per day, whatever runs twice.

Two guards, in one transaction with the durable enqueue of the WhatsApp message:
- the invoice row's `last_reminder_on` (a conditional update): two separate jobs on one day,
  e.g. the schedule and an operator's "run now", cannot both remind;
- the effect ledger, keyed by invoice and date: a redelivery of the same job skips what it did.
The message itself is an outbox job (jobs/outbox.py), so a crash after the commit loses nothing
and the send-once row (messaging/whatsapp.py) keeps a republished job from sending twice.
"""

from __future__ import annotations

import logging
from datetime import date

from django.db import transaction

from billing.models import Invoice
from billing.selectors import invoices_to_remind
from billing.services import claim_invoice_reminder
from identifiers import mask_phone
from jobs.ledger import claim_effect
from jobs.outbox import enqueue_durably
from jobs.task_names import TaskName

logger = logging.getLogger(__name__)


def reminder_text(invoice: Invoice, *, today: date) -> str:
    days = (today - invoice.due_date).days
    return (
        f"Reminder: invoice {invoice.number} for {invoice.amount:,.2f} {invoice.currency} was due on "
        f"{invoice.due_date:%Y-%m-%d} ({days} day{'s' if days != 1 else ''} ago). "
        "Please pay it or reply to this message if you need help."
    )


def send_payment_reminders(*, today: date, job_id: str, actor: str) -> dict[str, int]:
    """Remind the buyer of every overdue invoice not yet reminded today; returns counts."""
    counts = {"reminded": 0, "already_reminded": 0, "no_phone": 0}
    ids = list(invoices_to_remind(today=today).values_list("pk", flat=True))
    for invoice_id in ids:
        invoice = Invoice.objects.select_related("deal__buyer").filter(pk=invoice_id).first()
        if invoice is None:
            continue
        phone = invoice.deal.buyer.phone
        if not phone:
            counts["no_phone"] += 1
            logger.warning("invoice %s is overdue but its buyer has no phone number", invoice_id)
            continue
        with transaction.atomic():
            if not claim_effect(
                f"reminder:invoice:{invoice_id}:{today.isoformat()}", job_id=job_id
            ) or not claim_invoice_reminder(invoice_id=invoice_id, today=today, actor=actor):
                transaction.set_rollback(True)  # keep the ledger honest: nothing was done
                counts["already_reminded"] += 1
                continue
            enqueue_durably(
                TaskName.SEND_WHATSAPP_MESSAGE, to=phone, body=reminder_text(invoice, today=today)
            )
        counts["reminded"] += 1
        logger.info("payment reminder for invoice %s queued to %s", invoice_id, mask_phone(phone))
    return counts
