"""Leads (a buyer's interest in a vehicle), deals (an agreed sale) and brokers' commissions."""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from marketplace.models.people import Role, check_role
from marketplace.money import currency_field, money_field

# Leads and deals in these states wait on a person and are followed up when idle
# (marketplace.selectors.stalled_leads / stalled_deals). Module-level so the partial indexes
# in each Meta can name them too.
LEAD_OPEN_STATUSES = ("new", "contacted", "qualified")
DEAL_OPEN_STATUSES = ("negotiating", "agreed", "invoiced")


class Lead(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "New"
        CONTACTED = "contacted", "Contacted"
        QUALIFIED = "qualified", "Qualified"
        CONVERTED = "converted", "Converted to a deal"
        LOST = "lost", "Lost"

    TRANSITIONS = {
        Status.NEW: frozenset({Status.CONTACTED, Status.QUALIFIED, Status.LOST}),
        Status.CONTACTED: frozenset({Status.QUALIFIED, Status.LOST}),
        Status.QUALIFIED: frozenset({Status.CONVERTED, Status.LOST}),
        Status.CONVERTED: frozenset(),
        Status.LOST: frozenset({Status.NEW}),  # a lost lead can be revived
    }
    OPEN_STATUSES = LEAD_OPEN_STATUSES

    buyer = models.ForeignKey(
        "marketplace.Profile",
        on_delete=models.PROTECT,
        related_name="leads",
        db_index=False,
        limit_choices_to={"role": "buyer"},
    )
    vehicle = models.ForeignKey("marketplace.Vehicle", on_delete=models.PROTECT, related_name="leads")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    source = models.CharField(max_length=50, blank=True, help_text="whatsapp, web, referral...")
    last_activity_at = models.DateTimeField(default=timezone.now)
    # Set when a follow-up was triggered for the current idle spell; cleared by new activity.
    stalled_flagged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=["status"], name="lead_status_idx"),
            models.Index(fields=["-created_at"], name="lead_created_idx"),
            models.Index(fields=["buyer"], name="lead_buyer_idx"),
            models.Index(fields=["-updated_at"], name="lead_updated_idx"),
            # check_stalled_deals: open leads idle since before a cutoff, not yet flagged. Partial:
            # it holds only the few rows that can still stall (open and unflagged), in idle order,
            # so the daily check reads a short range of it and needs no sort.
            models.Index(
                fields=["last_activity_at"],
                name="lead_stalled_idx",
                condition=models.Q(status__in=LEAD_OPEN_STATUSES, stalled_flagged_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"Lead #{self.pk} ({self.status})"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        check_role(errors, "buyer", self.buyer if self.buyer_id else None, Role.BUYER)
        if errors:
            raise ValidationError(errors)


class Deal(models.Model):
    class Status(models.TextChoices):
        NEGOTIATING = "negotiating", "Negotiating"
        AGREED = "agreed", "Agreed"
        INVOICED = "invoiced", "Invoiced"
        PAID = "paid", "Paid"
        SHIPPING = "shipping", "Shipping"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    TRANSITIONS = {
        Status.NEGOTIATING: frozenset({Status.AGREED, Status.CANCELLED}),
        Status.AGREED: frozenset({Status.INVOICED, Status.CANCELLED}),
        Status.INVOICED: frozenset({Status.PAID, Status.CANCELLED}),
        # Once paid, money moved: a deal is refunded outside this flow, never just cancelled.
        Status.PAID: frozenset({Status.SHIPPING}),
        Status.SHIPPING: frozenset({Status.COMPLETED}),
        Status.COMPLETED: frozenset(),
        Status.CANCELLED: frozenset(),
    }
    OPEN_STATUSES = DEAL_OPEN_STATUSES

    buyer = models.ForeignKey(
        "marketplace.Profile",
        on_delete=models.PROTECT,
        related_name="deals_as_buyer",
        db_index=False,
        limit_choices_to={"role": "buyer"},
    )
    dealer = models.ForeignKey(
        "marketplace.Profile",
        on_delete=models.PROTECT,
        related_name="deals_as_dealer",
        db_index=False,
        limit_choices_to={"role": "dealer"},
    )
    broker = models.ForeignKey(
        "marketplace.Profile",
        on_delete=models.PROTECT,
        related_name="deals_as_broker",
        db_index=False,
        null=True,
        blank=True,
        limit_choices_to={"role": "broker"},
    )
    vehicle = models.ForeignKey("marketplace.Vehicle", on_delete=models.PROTECT, related_name="deals")
    lead = models.ForeignKey(Lead, on_delete=models.SET_NULL, null=True, blank=True, related_name="deals")
    agreed_price = money_field()
    currency = currency_field()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEGOTIATING)
    last_activity_at = models.DateTimeField(default=timezone.now)
    stalled_flagged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=["status"], name="deal_status_idx"),
            models.Index(fields=["-created_at"], name="deal_created_idx"),
            models.Index(fields=["buyer"], name="deal_buyer_idx"),
            models.Index(fields=["dealer"], name="deal_dealer_idx"),
            models.Index(fields=["broker"], name="deal_broker_idx"),
            models.Index(fields=["-updated_at"], name="deal_updated_idx"),
            # check_stalled_deals: open deals idle since before a cutoff, not yet flagged (partial,
            # like lead_stalled_idx).
            models.Index(
                fields=["last_activity_at"],
                name="deal_stalled_idx",
                condition=models.Q(status__in=DEAL_OPEN_STATUSES, stalled_flagged_at__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(agreed_price__gte=0), name="deal_price_non_negative"),
        ]

    def __str__(self) -> str:
        return f"Deal #{self.pk} ({self.status})"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        check_role(errors, "buyer", self.buyer if self.buyer_id else None, Role.BUYER)
        check_role(errors, "dealer", self.dealer if self.dealer_id else None, Role.DEALER)
        check_role(errors, "broker", self.broker if self.broker_id else None, Role.BROKER)
        if self.vehicle_id and self.dealer_id and self.vehicle.dealer_id != self.dealer_id:
            errors.setdefault("vehicle", "This vehicle is listed by another dealer.")
        if errors:
            raise ValidationError(errors)


class Commission(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SETTLED = "settled", "Settled"

    TRANSITIONS = {
        Status.PENDING: frozenset({Status.SETTLED}),
        Status.SETTLED: frozenset(),
    }

    broker = models.ForeignKey(
        "marketplace.Profile",
        on_delete=models.PROTECT,
        related_name="commissions",
        limit_choices_to={"role": "broker"},
    )
    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="commissions")
    amount = money_field()
    currency = currency_field()
    # Filled at settlement: the rate used to convert to CAD, kept so the payout can be audited.
    exchange_rate = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    amount_cad = money_field(null=True, blank=True, verbose_name="amount (CAD)")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    settled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            # process_pending_commissions: pending ones, oldest first.
            models.Index(fields=["status", "created_at"], name="commission_status_created_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["deal", "broker"], name="commission_once_per_deal_broker"),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="commission_amount_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} to broker {self.broker_id} on deal {self.deal_id}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        check_role(errors, "broker", self.broker if self.broker_id else None, Role.BROKER)
        if errors:
            raise ValidationError(errors)
