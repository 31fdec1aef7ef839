"""Billing: invoices for deals, each Stripe payment attempt on them, and exchange rates."""

from django.db import models
from django.utils import timezone

from marketplace.money import Currency, currency_field, money_field


class Invoice(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open (awaiting payment)"
        PROCESSING = "processing", "Processing (payment in flight)"
        PAID = "paid", "Paid"
        FAILED = "failed", "Payment failed"
        VOID = "void", "Void"

    TRANSITIONS = {
        Status.DRAFT: frozenset({Status.OPEN, Status.VOID}),
        Status.OPEN: frozenset({Status.PROCESSING, Status.PAID, Status.VOID}),
        Status.PROCESSING: frozenset({Status.PAID, Status.FAILED}),
        Status.FAILED: frozenset({Status.PROCESSING, Status.OPEN, Status.VOID}),
        # Final: a paid invoice never goes back to awaiting payment (refunds are separate).
        Status.PAID: frozenset(),
        Status.VOID: frozenset(),
    }
    # Money still owed: these are reminded when past due (billing.selectors.overdue_invoices).
    UNPAID_STATUSES = (Status.OPEN, Status.FAILED)

    deal = models.ForeignKey("marketplace.Deal", on_delete=models.PROTECT, related_name="invoices")
    number = models.CharField(max_length=32, unique=True, help_text="Human reference, e.g. INV-2025-00042")
    amount = money_field()
    currency = currency_field()
    due_date = models.DateField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    stripe_payment_intent_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    # At most one reminder per invoice per day: the reminder task skips rows reminded today.
    last_reminder_on = models.DateField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            # send_payment_reminders / process_pending_payments: unpaid invoices by due date.
            models.Index(fields=["status", "due_date"], name="invoice_status_due_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="invoice_amount_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.status})"


class PaymentAttempt(models.Model):
    """One try at charging an invoice through Stripe. Its idempotency key is what Stripe sees,
    so a retried or redelivered job repeats the same attempt instead of charging twice."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="attempts")
    number = models.PositiveIntegerField(help_text="1 for the first attempt on this invoice, then 2, ...")
    idempotency_key = models.CharField(max_length=255, unique=True)
    amount = money_field()
    currency = currency_field()
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True)
    stripe_status = models.CharField(max_length=40, blank=True, help_text="Stripe PaymentIntent status")
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("invoice", "number")
        constraints = [
            models.UniqueConstraint(fields=["invoice", "number"], name="payment_attempt_number_once"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id} attempt {self.number}"


class ExchangeRate(models.Model):
    """1 unit of `base` is worth `rate` units of `quote` on `as_of`."""

    base = models.CharField(max_length=3, choices=Currency.choices)
    quote = models.CharField(max_length=3, choices=Currency.choices)
    # 10 decimal places: CAD->XAF is ~440 while XAF->CAD is ~0.0023, both kept exactly.
    rate = models.DecimalField(max_digits=20, decimal_places=10)
    as_of = models.DateField()
    source = models.CharField(max_length=50, help_text="Provider that published the rate")
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-as_of", "base", "quote")
        constraints = [
            models.UniqueConstraint(fields=["base", "quote", "as_of"], name="exchange_rate_once_per_day"),
            models.CheckConstraint(condition=models.Q(rate__gt=0), name="exchange_rate_positive"),
            models.CheckConstraint(
                condition=~models.Q(base=models.F("quote")), name="exchange_rate_distinct_pair"
            ),
        ]

    def __str__(self) -> str:
        return f"1 {self.base} = {self.rate} {self.quote} ({self.as_of})"
