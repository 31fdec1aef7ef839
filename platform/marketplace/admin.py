"""Admin for the marketplace. Every changelist joins what it displays (list_select_related),
so it costs the same number of queries for 5 rows or 500."""

from django.contrib import admin

from audit.admin_actions import StatusReadOnlyOnChange, transition_action
from marketplace import services
from marketplace.models import Commission, Deal, Lead, Offer, Profile, Vehicle
from reports.market_dashboards_admin import dealer_performance_panel


def _actions(model, service, id_kwarg: str) -> list:
    return [
        transition_action(to=value, label=label.lower(), service=service, id_kwarg=id_kwarg)
        for value, label in model.Status.choices
    ]


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = (
        "display_name",
        "role",
        "company",
        "phone_masked",
        "preferred_currency",
        "country",
        "user",
    )
    list_filter = ("role", "preferred_currency", "country")
    search_fields = ("display_name", "company", "user__username", "user__email")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    # A dealer's page shows its performance, read from the dashboard snapshot (reports/market_dashboards.py).
    readonly_fields = ("dealer_performance",)

    @admin.display(description="Phone", ordering="phone")
    def phone_masked(self, obj: Profile) -> str:
        return obj.masked_phone

    @admin.display(description="Performance")
    def dealer_performance(self, obj: Profile | None) -> str:
        return dealer_performance_panel(obj)


@admin.register(Vehicle)
class VehicleAdmin(StatusReadOnlyOnChange, admin.ModelAdmin):
    list_display = ("vin", "year", "make", "model", "price_cad", "status", "dealer", "created_at")
    list_filter = ("status", "make", "year")
    search_fields = ("vin", "make", "model", "dealer__display_name")
    list_select_related = ("dealer",)
    raw_id_fields = ("dealer",)
    date_hierarchy = "created_at"
    actions = _actions(Vehicle, services.transition_vehicle, "vehicle_id")


@admin.register(Offer)
class OfferAdmin(StatusReadOnlyOnChange, admin.ModelAdmin):
    list_display = ("id", "vehicle", "buyer", "amount", "currency", "status", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("vehicle__vin", "buyer__display_name")
    list_select_related = ("vehicle", "buyer")
    raw_id_fields = ("vehicle", "buyer")
    actions = _actions(Offer, services.transition_offer, "offer_id")


@admin.register(Lead)
class LeadAdmin(StatusReadOnlyOnChange, admin.ModelAdmin):
    list_display = ("id", "buyer", "vehicle", "status", "source", "last_activity_at", "stalled_flagged_at")
    list_filter = ("status", "source")
    search_fields = ("buyer__display_name", "vehicle__vin")
    list_select_related = ("buyer", "vehicle")
    raw_id_fields = ("buyer", "vehicle")
    actions = _actions(Lead, services.transition_lead, "lead_id")


class CommissionInline(admin.TabularInline):
    model = Commission
    extra = 0
    raw_id_fields = ("broker",)
    readonly_fields = ("status", "exchange_rate", "amount_cad", "settled_at")


@admin.register(Deal)
class DealAdmin(StatusReadOnlyOnChange, admin.ModelAdmin):
    list_display = (
        "id",
        "vehicle",
        "buyer",
        "dealer",
        "broker",
        "agreed_price",
        "currency",
        "status",
        "last_activity_at",
        "stalled_flagged_at",
        "updated_at",
    )
    list_filter = ("status", "currency")
    search_fields = ("vehicle__vin", "buyer__display_name", "dealer__display_name", "broker__display_name")
    list_select_related = ("vehicle", "buyer", "dealer", "broker")
    raw_id_fields = ("vehicle", "buyer", "dealer", "broker", "lead")
    date_hierarchy = "created_at"
    inlines = (CommissionInline,)
    actions = _actions(Deal, services.transition_deal, "deal_id")


@admin.register(Commission)
class CommissionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "broker",
        "deal",
        "amount",
        "currency",
        "amount_cad",
        "status",
        "created_at",
        "settled_at",
    )
    list_filter = ("status", "currency")
    search_fields = ("broker__display_name", "deal__vehicle__vin")
    list_select_related = ("broker", "deal")
    raw_id_fields = ("broker", "deal")
    # Settlement goes through process_pending_commissions, which records the rate it used.
    readonly_fields = ("status", "exchange_rate", "amount_cad", "settled_at")
