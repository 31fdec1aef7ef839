"""Admin for stored vehicle-history reports (read-only: they are what the provider answered)."""

from django.contrib import admin

from reports.models import VehicleHistoryReport


@admin.register(VehicleHistoryReport)
class VehicleHistoryReportAdmin(admin.ModelAdmin):
    list_display = ("vin", "provider", "fetched_at", "paid_call")
    list_filter = ("provider", "paid_call")
    search_fields = ("=vin",)
    date_hierarchy = "fetched_at"
    readonly_fields = ("vin", "provider", "payload", "fetched_at", "paid_call")

    def has_add_permission(self, request) -> bool:
        return False
