"""The dashboards' default schedules: declared, synced into django-celery-beat, and in step
with the refresh periods that decide when a snapshot is stale."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from beat_schedules.defaults import DEFAULTS_BY_NAME
from reports.market_dashboards import REFRESH_PERIODS

SCHEDULES = {
    "refresh-dealer-performance": ("tasks.reports.refresh_dealer_performance", "*/30", "dealer_performance"),
    "refresh-analytics-dashboard": (
        "tasks.reports.refresh_analytics_dashboard",
        "*/15",
        "analytics_dashboard",
    ),
}


@pytest.mark.django_db
def test_sync_schedules_creates_both_refreshes_as_crontabs(settings):
    call_command("sync_schedules", stdout=open("/dev/null", "w"))

    for name, (task, minute, _) in SCHEDULES.items():
        row = PeriodicTask.objects.select_related("crontab").get(name=name)
        assert (row.task, row.enabled) == (task, True)
        assert (row.crontab.minute, row.crontab.hour, str(row.crontab.timezone)) == (
            minute,
            "*",
            settings.TIME_ZONE,
        )
        assert row.expire_seconds is not None


@pytest.mark.parametrize("name", SCHEDULES)
def test_the_schedule_runs_as_often_as_the_staleness_rule_expects(name, settings):
    _, minute, kind = SCHEDULES[name]
    declared = DEFAULTS_BY_NAME[name]

    assert declared.when.minute == minute
    assert REFRESH_PERIODS[kind] == timedelta(minutes=int(minute.removeprefix("*/")))
    # The cache keeps a snapshot for one period: the next refresh replaces it before it expires.
    assert settings.CACHE_TTLS[kind] == REFRESH_PERIODS[kind].total_seconds()
    # A message still queued when the next run is due is dropped.
    assert declared.expire_seconds < REFRESH_PERIODS[kind].total_seconds()
