"""Reads of vehicle-history reports: the freshest stored report for a VIN."""

from datetime import datetime, timedelta

from reports.models import VehicleHistoryReport


def latest_report(
    *,
    vin: str,
    now: datetime | None = None,
    max_age: timedelta | None = None,
) -> VehicleHistoryReport | None:
    """The newest report for `vin`, or None; with max_age, only one fetched within it
    (vhr_vin_fetched_idx)."""
    qs = VehicleHistoryReport.objects.filter(vin=vin)
    if max_age is not None and now is not None:
        qs = qs.filter(fetched_at__gte=now - max_age)
    return qs.order_by("-fetched_at").first()
