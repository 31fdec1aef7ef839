"""Report jobs: vehicle-history reports by VIN, paid per call, stored and cached 24 h
(reports/vehicle_history.py), and the dashboards' refreshes (reports/market_dashboards.py)."""

from __future__ import annotations

from jobs.arguments import Vin
from jobs.task_base import platform_task
from jobs.task_names import TaskName
from reports import market_dashboards
from reports.vehicle_history import get_vehicle_history


@platform_task(name=TaskName.FETCH_VEHICLE_HISTORY, soft_time_limit=60, time_limit=90)
def fetch_vehicle_history(self, vin: Vin) -> dict:
    """The vehicle-history report for `vin`: from the cache, else a stored one younger than 24 h,
    else one paid provider call."""
    report = get_vehicle_history(vin=vin)
    # The payload stays in the database (reports.VehicleHistoryReport); the result says where it is.
    return {
        "vin": report.vin,
        "report_id": report.report_id,
        "source": report.source,
        "provider": report.provider,
        "fetched_at": report.fetched_at.isoformat(),
        "paid_call": report.paid_call and report.source == "provider",
    }


# --- Dashboards (reports/market_dashboards.py): aggregates computed here, served from snapshots ------


@platform_task(name=TaskName.REFRESH_DEALER_PERFORMANCE, soft_time_limit=300, time_limit=360)
def refresh_dealer_performance(self) -> dict:
    """Recompute every dealer's performance snapshot and its cache entry. Rerunning is harmless:
    each run overwrites the same rows with the figures of its moment."""
    snapshots = market_dashboards.refresh_dealer_performance()
    computed_at = snapshots[0].computed_at.isoformat() if snapshots else None
    return {"dealers": len(snapshots), "computed_at": computed_at}


@platform_task(name=TaskName.REFRESH_ANALYTICS_DASHBOARD, soft_time_limit=300, time_limit=360)
def refresh_analytics_dashboard(self) -> dict:
    """Recompute the marketplace analytics snapshot and its cache entry (idempotent like above)."""
    dashboard = market_dashboards.refresh_analytics_dashboard()
    return {"computed_at": dashboard.computed_at.isoformat(), "etag": dashboard.etag}
