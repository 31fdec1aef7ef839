"""Admin for shipments and their tracking events."""

from django.contrib import admin

from audit.admin_actions import StatusReadOnlyOnChange, transition_action
from logistics import services
from logistics.models import Shipment, ShipmentEvent


class ShipmentEventInline(admin.TabularInline):
    model = ShipmentEvent
    extra = 0
    fields = ("kind", "occurred_at", "location", "description", "notified_at")
    readonly_fields = ("notified_at",)


@admin.register(Shipment)
class ShipmentAdmin(StatusReadOnlyOnChange, admin.ModelAdmin):
    list_display = (
        "id",
        "deal",
        "buyer",
        "status",
        "origin_port",
        "destination_port",
        "eta",
        "last_buyer_update_at",
        "last_delay_alert_on",
    )
    list_filter = ("status", "origin_port", "destination_port")
    search_fields = ("tracking_number", "deal__vehicle__vin", "deal__buyer__display_name")
    list_select_related = ("deal__buyer",)
    raw_id_fields = ("deal",)
    date_hierarchy = "eta"
    inlines = (ShipmentEventInline,)
    actions = [
        transition_action(
            to=value, label=label.lower(), service=services.transition_shipment, id_kwarg="shipment_id"
        )
        for value, label in Shipment.Status.choices
    ]

    @admin.display(description="Buyer", ordering="deal__buyer__display_name")
    def buyer(self, obj: Shipment) -> str:
        return obj.deal.buyer.display_name


@admin.register(ShipmentEvent)
class ShipmentEventAdmin(admin.ModelAdmin):
    list_display = ("shipment", "kind", "occurred_at", "location", "notified_at")
    list_filter = ("kind",)
    search_fields = ("shipment__tracking_number", "location", "description")
    list_select_related = ("shipment",)
    raw_id_fields = ("shipment",)
    date_hierarchy = "occurred_at"
