"""Writes of vehicle-history reports: store one provider answer, validated."""

from datetime import datetime

from django.utils import timezone

from identifiers import normalize_vin
from reports.models import VehicleHistoryReport


def store_report(
    *,
    vin: str,
    provider: str,
    payload: dict,
    paid_call: bool,
    fetched_at: datetime | None = None,
) -> VehicleHistoryReport:
    """Keep one provider answer. An invalid VIN raises ValidationError on "vin"."""
    report = VehicleHistoryReport(
        vin=normalize_vin(vin),
        provider=provider,
        payload=payload,
        paid_call=paid_call,
        fetched_at=fetched_at or timezone.now(),
    )
    report.full_clean()
    report.save()
    return report
