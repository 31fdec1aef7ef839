"""Admin for stored vehicle-history reports (read-only: they are what the provider answered) and
for the dashboards' snapshots, with the market dashboard page (reports/market_dashboards_admin.py)."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.urls import path
from django.utils.timesince import timesince

from reports.market_dashboards import Dashboard
from reports.market_dashboards_admin import market_dashboard_view, refresh_view
from reports.models import DashboardSnapshot, VehicleHistoryReport


@admin.register(VehicleHistoryReport)
class VehicleHistoryReportAdmin(admin.ModelAdmin):
    list_display = ("vin", "provider", "fetched_at", "paid_call")
    list_filter = ("provider", "paid_call")
    search_fields = ("=vin",)
    date_hierarchy = "fetched_at"
    readonly_fields = ("vin", "provider", "payload", "fetched_at", "paid_call")

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(DashboardSnapshot)
class DashboardSnapshotAdmin(admin.ModelAdmin):
    """The dashboards' snapshots (read-only: jobs write them), plus the market dashboard page and
    the refresh action (reports/market_dashboards_admin.py)."""

    list_display = ("key", "kind", "dealer", "computed_at", "age", "fresh")
    list_filter = ("kind",)
    list_select_related = ("dealer",)
    search_fields = ("=key", "dealer__display_name")
    readonly_fields = ("key", "kind", "dealer", "payload", "computed_at", "etag")
    change_list_template = "admin/reports/dashboardsnapshot/change_list.html"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Age")
    def age(self, obj: DashboardSnapshot) -> str:
        return timesince(obj.computed_at)

    @admin.display(description="Fresh", boolean=True)
    def fresh(self, obj: DashboardSnapshot) -> bool:
        return not Dashboard.from_snapshot(obj).is_stale()

    def get_urls(self):
        own = [
            path(
                "market/",
                self.admin_site.admin_view(self._viewer(market_dashboard_view)),
                name="reports_market_dashboard",
            ),
            path(
                "refresh/",
                self.admin_site.admin_view(self._viewer(refresh_view)),
                name="reports_dashboard_refresh",
            ),
        ]
        return own + super().get_urls()

    def _viewer(self, view):
        # Staff who may view snapshots may see the dashboard and ask for a refresh.
        def wrapped(request):
            if not self.has_view_permission(request):
                raise PermissionDenied
            return view(self, request)

        return wrapped
