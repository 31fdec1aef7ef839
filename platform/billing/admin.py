"""Admin for billing: invoices (status changed only through the transition actions), Stripe
payment attempts (read-only: they mirror what Stripe did) and exchange rates."""

from django.contrib import admin

from audit.admin_actions import StatusReadOnlyOnChange, transition_action
from billing import services
from billing.models import ExchangeRate, Invoice, PaymentAttempt


class PaymentAttemptInline(admin.TabularInline):
    model = PaymentAttempt
    extra = 0
    can_delete = False
    fields = (
        "number",
        "amount",
        "currency",
        "stripe_status",
        "stripe_payment_intent_id",
        "error_code",
        "created_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(StatusReadOnlyOnChange, admin.ModelAdmin):
    list_display = ("number", "deal", "buyer", "amount", "currency", "due_date", "status", "last_reminder_on")
    list_filter = ("status", "currency", "due_date")
    search_fields = ("number", "stripe_payment_intent_id", "deal__buyer__display_name", "deal__vehicle__vin")
    list_select_related = ("deal__buyer",)
    raw_id_fields = ("deal",)
    readonly_fields = ("stripe_payment_intent_id", "paid_at")
    date_hierarchy = "due_date"
    inlines = (PaymentAttemptInline,)
    actions = [
        transition_action(
            to=value,
            label=label.split(" (")[0].lower(),
            service=services.transition_invoice,
            id_kwarg="invoice_id",
        )
        for value, label in Invoice.Status.choices
    ]

    @admin.display(description="Buyer", ordering="deal__buyer__display_name")
    def buyer(self, obj: Invoice) -> str:
        return obj.deal.buyer.display_name


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(admin.ModelAdmin):
    list_display = ("invoice", "number", "amount", "currency", "stripe_status", "error_code", "created_at")
    list_filter = ("stripe_status", "currency")
    search_fields = ("invoice__number", "idempotency_key", "stripe_payment_intent_id")
    list_select_related = ("invoice",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    list_display = ("as_of", "base", "quote", "rate", "source", "fetched_at")
    list_filter = ("base", "quote", "source")
    search_fields = ("source",)
    date_hierarchy = "as_of"
