"""Reads of the marketplace that tasks and admin share: stalled leads and deals, pending
commissions, vehicles on offer. Each names the index that serves it."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet

from marketplace.models import Commission, Deal, Lead, Vehicle


def stalled_lead_threshold() -> timedelta:
    return timedelta(days=settings.STALLED_LEAD_AFTER_DAYS)


def stalled_deal_threshold() -> timedelta:
    return timedelta(days=settings.STALLED_DEAL_AFTER_DAYS)


def stalled_leads(*, now: datetime, threshold: timedelta | None = None) -> QuerySet[Lead]:
    """Open leads with no activity for `threshold` (settings.STALLED_LEAD_AFTER_DAYS) that have
    not been flagged since their last activity (lead_stalled_idx, partial on unflagged rows)."""
    cutoff = now - (threshold if threshold is not None else stalled_lead_threshold())
    return Lead.objects.filter(
        status__in=Lead.OPEN_STATUSES,
        last_activity_at__lt=cutoff,
        stalled_flagged_at__isnull=True,
    ).order_by("last_activity_at")


def stalled_deals(*, now: datetime, threshold: timedelta | None = None) -> QuerySet[Deal]:
    """Open deals with no activity for `threshold` (settings.STALLED_DEAL_AFTER_DAYS), not yet
    flagged (deal_stalled_idx)."""
    cutoff = now - (threshold if threshold is not None else stalled_deal_threshold())
    return Deal.objects.filter(
        status__in=Deal.OPEN_STATUSES,
        last_activity_at__lt=cutoff,
        stalled_flagged_at__isnull=True,
    ).order_by("last_activity_at")


def pending_commissions() -> QuerySet[Commission]:
    """Commissions still to settle, oldest first (commission_status_created_idx)."""
    return Commission.objects.filter(status=Commission.Status.PENDING).order_by("created_at")


def available_vehicles(*, make: str | None = None) -> QuerySet[Vehicle]:
    """What buyers can make offers on (vehicle_status_make_idx)."""
    qs = Vehicle.objects.filter(status=Vehicle.Status.AVAILABLE)
    if make:
        qs = qs.filter(make=make)
    return qs.select_related("dealer")
