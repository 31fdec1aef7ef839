"""Payment reminders: at most one per overdue invoice per day, whatever runs twice (the guards:
messaging/daily_notices.py; the invoice's own is `last_reminder_on`).
"""

from __future__ import annotations

from datetime import date

from billing.models import Invoice
from billing.selectors import invoices_to_remind
from billing.services import claim_invoice_reminder
from jobs.task_names import TaskName
from messaging.daily_notices import DailyNotice, send_daily_notices


def reminder_text(invoice: Invoice, *, today: date) -> str:
    days = (today - invoice.due_date).days
    return (
        f"Reminder: invoice {invoice.number} for {invoice.amount:,.2f} {invoice.currency} was due on "
        f"{invoice.due_date:%Y-%m-%d} ({days} day{'s' if days != 1 else ''} ago). "
        "Please pay it or reply to this message if you need help."
    )


def send_payment_reminders(*, today: date, job_id: str, actor: str) -> dict[str, int]:
    """Remind the buyer of every overdue invoice not yet reminded today; returns counts."""
    invoices = list(invoices_to_remind(today=today).select_related("deal__buyer"))
    counts = send_daily_notices(
        (DailyNotice(i.pk, i.deal.buyer.phone, reminder_text(i, today=today)) for i in invoices),
        kind="reminder:invoice",
        task=TaskName.SEND_WHATSAPP_MESSAGE,
        claim=lambda invoice_id: claim_invoice_reminder(invoice_id=invoice_id, today=today, actor=actor),
        today=today,
        job_id=job_id,
    )
    return {
        "reminded": counts.queued,
        "already_reminded": counts.already_sent_today,
        "no_phone": counts.no_phone,
    }
