"""The dashboards in admin: the market page (/admin/reports/dashboardsnapshot/market/), the
"refresh now" action that enqueues a refresh job, and the performance panel on a dealer's page.

Pages read the snapshots only (reports/market_dashboards.py); they never compute a dashboard inside a
request, so a slow aggregate cannot make admin slow. A snapshot older than twice its refresh
period is shown with its age and a warning: the schedule or the workers have stopped."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.timesince import timesince

from jobs.celery_app import app
from jobs.task_names import TaskName
from marketplace.models import Profile, Role
from reports.market_dashboards import (
    ANALYTICS_DASHBOARD,
    DEALER_PERFORMANCE,
    Dashboard,
    read_dealer_performance,
    read_market_analytics,
)

logger = logging.getLogger(__name__)

REFRESH_TASKS = {
    DEALER_PERFORMANCE: TaskName.REFRESH_DEALER_PERFORMANCE,
    ANALYTICS_DASHBOARD: TaskName.REFRESH_ANALYTICS_DASHBOARD,
}


def snapshot_context(dashboard: Dashboard | None) -> dict[str, Any]:
    """What a template needs to say how old a snapshot is and whether to worry."""
    if dashboard is None:
        return {"dashboard": None}
    return {
        "dashboard": dashboard,
        "data": dashboard.payload,
        "age": timesince(dashboard.computed_at),
        "stale": dashboard.is_stale(),
        "period_minutes": int(dashboard.period.total_seconds() // 60),
    }


def market_dashboard_view(model_admin, request: HttpRequest) -> HttpResponse:
    """The marketplace analytics as last computed, with refresh buttons."""
    context = {
        **model_admin.admin_site.each_context(request),
        **snapshot_context(read_market_analytics(compute_missing=False)),
        "title": "Marketplace analytics",
        "opts": model_admin.model._meta,
        "refresh_url": reverse("admin:reports_dashboard_refresh"),
        "kinds": {"analytics": ANALYTICS_DASHBOARD, "dealers": DEALER_PERFORMANCE},
    }
    return TemplateResponse(request, "admin/reports/market_dashboard.html", context)


def refresh_view(model_admin, request: HttpRequest) -> HttpResponse:
    """POST kind=<dealer_performance|analytics_dashboard>: enqueue that refresh job, then go back."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    back = request.GET.get("next") or request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = reverse("admin:reports_market_dashboard")
    kind = request.POST.get("kind", "")
    task_name = REFRESH_TASKS.get(kind)
    if task_name is None:
        messages.error(request, f"kind: must be one of {', '.join(REFRESH_TASKS)}; got {kind!r}.")
        return redirect(back)
    try:
        job = app.tasks[task_name].delay()
    except Exception as exc:  # the broker is down: say so, the page still answers
        logger.warning("could not enqueue %s from admin: %s", task_name, type(exc).__name__)
        messages.error(request, f"The job queue is unavailable; {task_name} was not queued. Try again later.")
        return redirect(back)
    messages.success(request, f"Refresh queued as job {job.id}; reload this page in a few seconds.")
    return redirect(back)


def dealer_performance_panel(profile: Profile | None) -> str:
    """The performance block of a dealer's admin page (HTML), or a short note for other roles."""
    if profile is None or profile.pk is None:
        return "Shown once the dealer is saved."
    if profile.role != Role.DEALER:
        return "Only dealers have a performance."
    context = {
        **snapshot_context(read_dealer_performance(dealer_id=profile.pk, compute_missing=False)),
        "market_url": reverse("admin:reports_market_dashboard"),
    }
    return render_to_string("admin/reports/dealer_performance_panel.html", context)
