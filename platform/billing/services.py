"""Writes to billing: invoices and their status, the daily reminder guard, exchange rates."""

from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.services import claim_once_per_day, create_audited
from audit.transitions import apply_transition
from billing.models import ExchangeRate, Invoice
from marketplace.models import Deal


def create_invoice(
    *,
    deal: Deal,
    amount: Decimal,
    currency: str,
    due_date: date,
    number: str,
    actor: str,
    status: str = Invoice.Status.OPEN,
) -> Invoice:
    if status not in (Invoice.Status.DRAFT, Invoice.Status.OPEN):
        raise ValidationError({"status": "A new invoice starts as draft or open."})
    invoice = Invoice(
        deal=deal, amount=amount, currency=currency, due_date=due_date, number=number, status=status
    )
    return create_audited(obj=invoice, actor=actor)


def transition_invoice(*, invoice_id: int, to: str, actor: str) -> Invoice:
    """Move an invoice along Invoice.TRANSITIONS; entering paid stamps paid_at. A paid invoice
    is final: sending it back to open (awaiting payment) raises on "status"."""

    def on_enter(obj: Invoice, old: str, new: str) -> dict:
        if new == Invoice.Status.PAID:
            obj.paid_at = timezone.now()
            return {"paid_at": [None, obj.paid_at]}
        return {}

    return apply_transition(
        model=Invoice,
        pk=invoice_id,
        to=to,
        actor=actor,
        table=Invoice.TRANSITIONS,
        on_enter=on_enter,
    )


def claim_invoice_reminder(*, invoice_id: int, today: date, actor: str) -> bool:
    """Record that today's reminder for this invoice is being sent. True for exactly one caller
    per invoice per day, False when it was already reminded today."""
    return claim_once_per_day(
        Invoice, invoice_id, field="last_reminder_on", today=today, actor=actor, action="reminder"
    )


def record_exchange_rate(
    *,
    base: str,
    quote: str,
    rate: Decimal,
    as_of: date,
    source: str,
    fetched_at: datetime | None = None,
) -> ExchangeRate:
    """Store (or correct) the rate of one pair on one day; rerunning the fetch is harmless."""
    candidate = ExchangeRate(base=base, quote=quote, rate=rate, as_of=as_of, source=source)
    # Uniqueness on (base, quote, as_of) is what update_or_create relies on; skip it here.
    candidate.full_clean(validate_unique=False, validate_constraints=False)
    if Decimal(rate) <= 0:
        raise ValidationError({"rate": "An exchange rate must be positive."})
    if base == quote:
        raise ValidationError({"quote": "Base and quote currencies must differ."})
    obj, _ = ExchangeRate.objects.update_or_create(
        base=base,
        quote=quote,
        as_of=as_of,
        defaults={"rate": rate, "source": source, "fetched_at": fetched_at or timezone.now()},
    )
    return obj
