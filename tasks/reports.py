"""Report jobs: vehicle-history reports by VIN, paid per call, stored and cached 24 h
(reports/vehicle_history.py)."""

from __future__ import annotations

from integrations.errors import PermanentError
from integrations.vehicle_history import normalize_vin
from jobs.task_base import platform_task
from reports import market_dashboards
from reports.vehicle_history import get_vehicle_history


@platform_task(name="tasks.reports.fetch_vehicle_history", soft_time_limit=60, time_limit=90)
def fetch_vehicle_history(self, vin: str) -> dict:
    """The vehicle-history report for `vin`: from the cache, else a stored one younger than 24 h,
    else one paid provider call. A malformed VIN fails at once, naming `vin`."""
    try:
        vin = normalize_vin(vin)
    except PermanentError as exc:
        raise ValueError(
            f"vin: must be 17 characters, digits and capital letters except I, O and Q; got {vin!r}"
        ) from exc
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


@platform_task(name="tasks.reports.refresh_dealer_performance", soft_time_limit=300, time_limit=360)
def refresh_dealer_performance(self) -> dict:
    """Recompute every dealer's performance snapshot and its cache entry. Rerunning is harmless:
    each run overwrites the same rows with the figures of its moment."""
    snapshots = market_dashboards.refresh_dealer_performance()
    computed_at = snapshots[0].computed_at.isoformat() if snapshots else None
    return {"dealers": len(snapshots), "computed_at": computed_at}


@platform_task(name="tasks.reports.refresh_analytics_dashboard", soft_time_limit=300, time_limit=360)
def refresh_analytics_dashboard(self) -> dict:
    """Recompute the marketplace analytics snapshot and its cache entry (idempotent like above)."""
    dashboard = market_dashboards.refresh_analytics_dashboard()
    return {"computed_at": dashboard.computed_at.isoformat(), "etag": dashboard.etag}
