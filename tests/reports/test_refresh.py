"""The refresh tasks: query counts that do not grow with the market, snapshots stored once per
dealer and cached, ETags stable while the figures are, and the query-count helper itself."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.cache import cache

from billing.models import ExchangeRate, Invoice
from integrations.cache import cache_key
from marketplace.models import Deal, Vehicle
from reports import market_dashboards
from reports.models import DashboardSnapshot
from tasks.reports import refresh_analytics_dashboard, refresh_dealer_performance
from tests import factories as f
from tests.support.queries import assert_max_queries, count_queries

pytestmark = pytest.mark.django_db


def add_dealers(n: int) -> list:
    """`n` dealers, each with a listed and a sold vehicle, an offer, a won deal in USD with a paid
    invoice and a shipment, and an overdue invoice: every aggregate has rows to group."""
    if not ExchangeRate.objects.filter(base="USD", quote="CAD").exists():
        f.make_exchange_rate(base="USD", quote="CAD", rate=Decimal("1.35"))
    dealers = []
    for _ in range(n):
        dealer = f.make_dealer()
        listed = f.make_vehicle(dealer=dealer)
        f.make_offer(vehicle=listed)
        sold = f.make_vehicle(dealer=dealer, status=Vehicle.Status.SOLD)
        won = f.make_deal(vehicle=sold, broker=None, status=Deal.Status.PAID, currency="USD")
        f.make_invoice(deal=won, status=Invoice.Status.PAID)
        f.make_invoice(deal=won, status=Invoice.Status.OPEN, due_date=date(2020, 1, 31))
        f.make_shipment(deal=won)
        dealers.append(dealer)
    return dealers


def queries_of(task) -> int:
    with count_queries() as log:
        task()
    return log.count


def test_dealer_refresh_costs_the_same_queries_for_5_dealers_as_for_50():
    add_dealers(5)
    with assert_max_queries(6):
        refresh_dealer_performance()
    five = queries_of(refresh_dealer_performance)
    assert DashboardSnapshot.objects.filter(kind="dealer_performance").count() == 5

    add_dealers(45)
    fifty = queries_of(refresh_dealer_performance)

    assert DashboardSnapshot.objects.filter(kind="dealer_performance").count() == 50
    assert fifty == five


def test_analytics_refresh_costs_the_same_queries_for_5_dealers_as_for_50():
    add_dealers(5)
    with assert_max_queries(14):
        refresh_analytics_dashboard()
    five = queries_of(refresh_analytics_dashboard)

    add_dealers(45)
    fifty = queries_of(refresh_analytics_dashboard)

    assert fifty == five
    totals = DashboardSnapshot.objects.get(key="market").payload["totals"]
    assert totals["deals_won"] == 50 and totals["invoices_overdue"] == 50


def test_a_refresh_stores_one_snapshot_per_dealer_and_caches_it_after_commit(
    django_capture_on_commit_callbacks,
):
    dealer = add_dealers(1)[0]
    cache.delete(cache_key("dealer_performance", f"dealer:{dealer.pk}"))

    with django_capture_on_commit_callbacks(execute=True):
        result = refresh_dealer_performance()
    with django_capture_on_commit_callbacks(execute=True):
        refresh_dealer_performance()

    assert result["dealers"] == 1
    row = DashboardSnapshot.objects.get(dealer=dealer)  # one row, overwritten by the second run
    assert row.key == f"dealer:{dealer.pk}" and row.payload["deals_won"] == 1
    cached = cache.get(cache_key("dealer_performance", row.key))
    assert cached["etag"] == row.etag and cached["payload"] == row.payload


def test_the_etag_changes_with_the_figures_and_only_with_them():
    dealer = add_dealers(1)[0]
    first = market_dashboards.refresh_dealer_performance()[0]
    again = market_dashboards.refresh_dealer_performance()[0]
    f.make_vehicle(dealer=dealer)
    changed = market_dashboards.refresh_dealer_performance()[0]

    assert again.computed_at > first.computed_at
    assert again.etag == first.etag
    assert changed.etag != first.etag


def test_a_new_dealer_is_computed_when_first_read():
    dealer = f.make_dealer()
    f.make_vehicle(dealer=dealer)

    dashboard = market_dashboards.read_dealer_performance(dealer_id=dealer.pk)

    assert dashboard.payload["vehicles_listed"] == 1
    assert DashboardSnapshot.objects.filter(key=f"dealer:{dealer.pk}").exists()


def test_a_profile_that_is_not_a_dealer_has_no_performance():
    buyer = f.make_buyer()

    assert market_dashboards.read_dealer_performance(dealer_id=buyer.pk) is None
    assert not DashboardSnapshot.objects.exists()


def test_assert_max_queries_names_every_query_when_the_count_is_exceeded():
    dealers = add_dealers(3)

    with pytest.raises(AssertionError) as failure:
        with assert_max_queries(2):
            for dealer in dealers:  # an N+1 on purpose
                list(Vehicle.objects.filter(dealer_id=dealer.pk))

    message = str(failure.value)
    assert message.startswith("Expected at most 2 queries, 3 were executed:")
    for n, dealer in enumerate(dealers, start=1):
        assert f'\n{n}. SELECT "marketplace_vehicle"' in message
        assert f'WHERE "marketplace_vehicle"."dealer_id" = {dealer.pk}' in message


def test_assert_max_queries_passes_within_the_limit():
    with assert_max_queries(1) as log:
        list(Vehicle.objects.all())
    assert log.count == 1


def test_reading_without_the_cache_reads_the_database_snapshot(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        market_dashboards.refresh_analytics_dashboard()
    DashboardSnapshot.objects.filter(key="market").update(payload={"from": "database"})

    assert market_dashboards.read_market_analytics(use_cache=False).payload == {"from": "database"}
    assert market_dashboards.read_market_analytics().payload != {"from": "database"}  # the cached copy
