"""Every dashboard test starts and ends with no dashboard in the cache: test databases restart
their ids at 1, so a cached "dealer:1" from an earlier run would otherwise answer for a new dealer.
Only the dashboards' keys are deleted; the same Redis may hold the broker's queues."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from reports.market_dashboards import ANALYTICS_DASHBOARD, DEALER_PERFORMANCE


def forget_dashboards() -> None:
    for kind in (DEALER_PERFORMANCE, ANALYTICS_DASHBOARD):
        cache.delete_pattern(f"{kind}:*")


@pytest.fixture(autouse=True)
def no_cached_dashboards():
    forget_dashboards()
    yield
    forget_dashboards()
