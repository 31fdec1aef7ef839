"""Reads of billing that the payment tasks and admin share."""

from datetime import date
from decimal import Decimal

from django.db.models import Q, QuerySet

from billing.models import ExchangeRate, Invoice


def overdue_invoices(*, today: date) -> QuerySet[Invoice]:
    """Unpaid invoices past their due date, oldest due first (invoice_status_due_idx)."""
    return Invoice.objects.filter(status__in=Invoice.UNPAID_STATUSES, due_date__lt=today).order_by("due_date")


def invoices_to_remind(*, today: date) -> QuerySet[Invoice]:
    """Overdue invoices not yet reminded today: what send_payment_reminders works through."""
    return overdue_invoices(today=today).filter(
        Q(last_reminder_on__isnull=True) | Q(last_reminder_on__lt=today)
    )


def invoices_awaiting_payment() -> QuerySet[Invoice]:
    """Invoices process_pending_payments moves forward: open, or with a payment in flight."""
    return Invoice.objects.filter(status__in=(Invoice.Status.OPEN, Invoice.Status.PROCESSING)).order_by(
        "due_date"
    )


def latest_rate(*, base: str, quote: str, on: date | None = None) -> Decimal | None:
    """Units of `quote` per unit of `base` on `on` (or the latest known), None if unknown."""
    if base == quote:
        return Decimal(1)
    qs = ExchangeRate.objects.filter(base=base, quote=quote)
    if on is not None:
        qs = qs.filter(as_of__lte=on)
    return qs.order_by("-as_of").values_list("rate", flat=True).first()
