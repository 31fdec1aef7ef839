"""The dashboards in admin: a dealer's page shows its performance, the market page shows the
analytics, an old snapshot is flagged with its age, and "refresh now" runs the refresh job."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from reports import market_dashboards
from reports.models import DashboardSnapshot
from tests import factories as f
from tests.reports.conftest import forget_dashboards
from tests.support.processes import wait_until

MARKET = "/admin/reports/dashboardsnapshot/market/"
REFRESH = "/admin/reports/dashboardsnapshot/refresh/"


def profile_page(profile) -> str:
    return f"/admin/marketplace/profile/{profile.pk}/change/"


def age_snapshot(key: str, minutes: int) -> None:
    DashboardSnapshot.objects.filter(key=key).update(computed_at=timezone.now() - timedelta(minutes=minutes))
    forget_dashboards()


@pytest.mark.django_db
def test_a_dealers_page_shows_its_performance(admin_client):
    dealer = f.make_dealer()
    f.make_vehicle(dealer=dealer)
    f.make_deal(dealer=dealer, status="paid", agreed_price="12345.60", broker=None)
    market_dashboards.refresh_dealer_performance()

    page = admin_client.get(profile_page(dealer)).content.decode()

    assert 'id="dealer-performance"' in page
    assert '<th scope="row">Deals won</th><td>1</td>' in page
    assert "12345.60 CAD" in page
    assert "performance-stale" not in page


@pytest.mark.django_db
def test_a_dealers_old_snapshot_is_shown_with_its_age_and_a_warning(admin_client):
    dealer = f.make_dealer()
    market_dashboards.refresh_dealer_performance()
    age_snapshot(f"dealer:{dealer.pk}", minutes=61)  # twice 30 minutes, and one more

    page = admin_client.get(profile_page(dealer)).content.decode()

    assert 'id="performance-stale"' in page
    assert "Stale: computed 1\xa0hour, 1\xa0minute ago" in page


@pytest.mark.django_db
def test_a_snapshot_just_under_twice_its_period_is_not_flagged(admin_client):
    dealer = f.make_dealer()
    market_dashboards.refresh_dealer_performance()
    age_snapshot(f"dealer:{dealer.pk}", minutes=59)

    assert "performance-stale" not in admin_client.get(profile_page(dealer)).content.decode()


@pytest.mark.django_db
def test_other_roles_pages_have_no_performance(admin_client):
    buyer = f.make_buyer()

    page = admin_client.get(profile_page(buyer)).content.decode()

    assert "Only dealers have a performance." in page
    assert not DashboardSnapshot.objects.exists()


@pytest.mark.django_db
def test_the_market_page_shows_the_analytics(admin_client):
    f.make_vehicle()
    f.make_invoice(status="paid", amount="500.00", currency="USD", paid_at=timezone.now())
    market_dashboards.refresh_analytics_dashboard()

    page = admin_client.get(MARKET).content.decode()

    assert 'id="dash-totals"' in page and 'id="dash-weeks"' in page
    assert '<td>USD</td><td class="num">1</td><td class="num">500.00</td>' in page
    assert "dash-stale" not in page
    assert 'id="refresh-analytics"' in page and 'id="refresh-dealers"' in page


@pytest.mark.django_db
def test_the_market_page_warns_when_the_snapshot_is_older_than_twice_its_period(admin_client):
    market_dashboards.refresh_analytics_dashboard()
    age_snapshot("market", minutes=31)  # period 15 minutes

    page = admin_client.get(MARKET).content.decode()

    assert 'id="dash-stale"' in page
    assert "Stale: computed 31\xa0minutes ago" in page


@pytest.mark.django_db
def test_the_market_page_before_any_refresh_computes_nothing(admin_client):
    page = admin_client.get(MARKET).content.decode()

    assert 'id="dash-missing"' in page
    assert not DashboardSnapshot.objects.exists()


@pytest.mark.django_db
def test_the_snapshot_list_links_to_the_market_page(admin_client):
    market_dashboards.refresh_analytics_dashboard()

    page = admin_client.get("/admin/reports/dashboardsnapshot/").content.decode()

    assert f'href="{MARKET}"' in page and "market" in page


@pytest.mark.django_db
def test_pages_need_staff(client):
    user = f.make_user()
    client.force_login(user)

    assert client.get(MARKET).status_code == 302
    assert client.post(REFRESH, {"kind": "analytics_dashboard"}).status_code == 302


@pytest.mark.django_db
def test_refresh_needs_a_known_kind_and_a_post(admin_client):
    assert admin_client.get(REFRESH).status_code == 405

    response = admin_client.post(REFRESH, {"kind": "everything"}, follow=True)

    assert "must be one of dealer_performance, analytics_dashboard" in response.content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind, key", [("analytics_dashboard", "market"), ("dealer_performance", None)])
def test_refresh_now_runs_the_refresh_job_on_a_worker(admin_client, live_worker, kind, key):
    dealer = f.make_dealer()
    f.make_vehicle(dealer=dealer)
    key = key or f"dealer:{dealer.pk}"
    market_dashboards.refresh_analytics_dashboard()
    market_dashboards.refresh_dealer_performance()
    age_snapshot(key, minutes=120)
    before = DashboardSnapshot.objects.get(key=key).computed_at

    response = admin_client.post(REFRESH, {"kind": kind}, follow=True)

    assert "Refresh queued as job" in response.content.decode()
    wait_until(
        lambda: DashboardSnapshot.objects.get(key=key).computed_at > before,
        timeout=30,
        what=f"the {kind} refresh to run",
    )
    assert "dash-stale" not in admin_client.get(MARKET).content.decode()


@pytest.mark.django_db
def test_admin_index_links_to_the_market_dashboard(admin_client):
    page = admin_client.get(reverse("admin:index"))

    assert page.status_code == 200
    assert reverse("admin:reports_market_dashboard") in page.content.decode()
