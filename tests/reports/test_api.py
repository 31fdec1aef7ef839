"""GET /api/v1/reports/dealers/<id> and /api/v1/reports/analytics: API key, ETag and
Cache-Control, 304 on a matching If-None-Match, the cached copy first, and the database
snapshot when the cache's Redis is down."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from http_api.keys import create_api_key
from reports import market_dashboards
from reports.models import DashboardSnapshot
from tests import factories as f
from tests.reports.conftest import forget_dashboards

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(db) -> Client:
    _, key = create_api_key(name=f"reports-{uuid.uuid4().hex[:10]}")
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.fixture
def dealer():
    dealer = f.make_dealer(display_name="Maple")
    f.make_vehicle(dealer=dealer)
    f.make_vehicle(dealer=dealer)
    return dealer


def dealer_url(dealer) -> str:
    return f"/api/v1/reports/dealers/{dealer.pk}"


def test_dealer_performance_with_etag_and_cache_control(api, dealer):
    dashboard = market_dashboards.refresh_dealer_performance()[0]

    response = api.get(dealer_url(dealer))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["kind"] == "dealer_performance" and body["stale"] is False
    assert body["refresh_period_seconds"] == 1800
    assert body["data"]["dealer"] == "Maple" and body["data"]["vehicles_listed"] == 2
    assert response["ETag"] == f'W/"{dashboard.etag}"'
    cache_control = dict(part.strip().partition("=")[::2] for part in response["Cache-Control"].split(","))
    assert "private" in cache_control and 1790 <= int(cache_control["max-age"]) <= 1800
    assert response["Last-Modified"]


def test_a_matching_if_none_match_is_answered_304_without_a_body(api, dealer):
    etag = api.get(dealer_url(dealer))["ETag"]

    response = api.get(dealer_url(dealer), HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag and response["Cache-Control"].startswith("private, max-age=")
    # The weak comparison: the strong form of the same tag, or one of a list, matches too.
    strong = etag.removeprefix("W/")
    assert api.get(dealer_url(dealer), HTTP_IF_NONE_MATCH=strong).status_code == 304
    assert api.get(dealer_url(dealer), HTTP_IF_NONE_MATCH=f'"other", {etag}').status_code == 304


def test_a_stale_if_none_match_gets_the_new_figures(api, dealer):
    old = api.get(dealer_url(dealer))["ETag"]
    f.make_vehicle(dealer=dealer)
    market_dashboards.refresh_dealer_performance()

    response = api.get(dealer_url(dealer), HTTP_IF_NONE_MATCH=old)

    assert response.status_code == 200
    assert response.json()["data"]["vehicles_listed"] == 3
    assert response["ETag"] != old


def test_analytics_304_on_a_matching_etag(api, dealer):
    first = api.get("/api/v1/reports/analytics")
    assert first.status_code == 200, first.content
    assert first.json()["data"]["totals"]["vehicles_listed"] == 2
    assert len(first.json()["data"]["by_week"]) == 12

    again = api.get("/api/v1/reports/analytics", HTTP_IF_NONE_MATCH=first["ETag"])

    assert again.status_code == 304 and again.content == b""


def test_served_from_the_cache_while_it_holds_the_snapshot(api, dealer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        market_dashboards.refresh_dealer_performance()
    # Only the cache still has the real figures now.
    DashboardSnapshot.objects.filter(dealer=dealer).update(payload={"dealer": "edited in the database"})

    response = api.get(dealer_url(dealer))

    assert response.json()["data"]["vehicles_listed"] == 2


@pytest.fixture
def redis_down(private_redis, settings):
    """CACHES on a Redis of this test's own, which the test stops."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": private_redis.url}}
    cache.set("probe", "up")
    assert cache.get("probe") == "up"
    return private_redis


def test_with_redis_stopped_the_database_snapshot_is_served(
    api, dealer, redis_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        snapshot = market_dashboards.refresh_dealer_performance()[0]
        market = market_dashboards.refresh_analytics_dashboard()
    assert cache.get(f"dealer_performance:{snapshot.key}") is not None
    # Figures change after the snapshot: what is served must be the snapshot, not a live count.
    f.make_vehicle(dealer=dealer)
    redis_down.stop()
    assert cache.get("probe") is None

    dealer_answer = api.get(dealer_url(dealer))
    market_answer = api.get("/api/v1/reports/analytics")
    revalidated = api.get(dealer_url(dealer), HTTP_IF_NONE_MATCH=f'W/"{snapshot.etag}"')

    assert dealer_answer.status_code == 200, dealer_answer.content
    assert dealer_answer.json()["data"]["vehicles_listed"] == 2
    assert dealer_answer["ETag"] == f'W/"{snapshot.etag}"'
    assert market_answer.status_code == 200
    assert market_answer["ETag"] == f'W/"{market.etag}"'
    assert market_answer.json()["data"]["totals"]["vehicles_listed"] == 2
    assert revalidated.status_code == 304


def test_an_old_snapshot_says_it_is_stale_and_is_not_cached_for_long(api, dealer):
    market_dashboards.refresh_dealer_performance()
    DashboardSnapshot.objects.filter(dealer=dealer).update(computed_at=timezone.now() - timedelta(minutes=61))
    forget_dashboards()

    response = api.get(dealer_url(dealer))

    body = response.json()
    assert body["stale"] is True and body["age_seconds"] >= 61 * 60
    assert response["Cache-Control"] == "private, max-age=0"


def test_a_dealer_never_computed_is_computed_on_first_request(api, dealer):
    response = api.get(dealer_url(dealer))

    assert response.status_code == 200
    assert response.json()["data"]["vehicles_listed"] == 2
    assert DashboardSnapshot.objects.filter(dealer=dealer).count() == 1


def test_an_id_that_is_not_a_dealers_is_404_in_the_error_shape(api):
    buyer = f.make_buyer()

    response = api.get(f"/api/v1/reports/dealers/{buyer.pk}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_out_of_range_id_is_a_400_naming_the_field(api):
    response = api.get(f"/api/v1/reports/dealers/{2**70}")

    assert response.status_code == 400
    assert "dealer_id" in response.json()["error"]["details"]["fields"]


@pytest.mark.parametrize("path", ["/api/v1/reports/analytics", "/api/v1/reports/dealers/1"])
def test_an_api_key_is_required(client, path):
    response = client.get(path)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_both_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]

    dealer = paths["/api/v1/reports/dealers/{dealer_id}"]["get"]
    market = paths["/api/v1/reports/analytics"]["get"]
    assert {"200", "304", "400", "401", "404", "429"} == set(dealer["responses"])
    assert {"200", "304", "401", "429"} == set(market["responses"])
    assert any(p["name"] == "If-None-Match" for p in dealer["parameters"])
