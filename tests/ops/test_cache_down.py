"""Graceful degradation: with the cache's Redis down the web app still answers, /healthz says
the cache is down (200, degraded), and a job accepted meanwhile is executed, not lost."""

import time

import pytest
from django.core.cache import cache
from django_celery_results.models import TaskResult

from http_api.keys import create_api_key
from tests.support.processes import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_worker")]


@pytest.fixture
def cache_down(private_redis, settings):
    """CACHES on a Redis of its own, which is then stopped; broker and database stay up."""
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": private_redis.url},
    }
    cache.set("probe", "warm")
    assert cache.get("probe") == "warm"
    private_redis.stop()
    return private_redis


def test_healthz_says_the_cache_is_down_and_still_answers_200(client, cache_down):
    started = time.monotonic()
    response = client.get("/healthz")
    elapsed = time.monotonic() - started

    body = response.json()
    assert response.status_code == 200 and body["status"] == "degraded"
    assert body["checks"]["cache"]["ok"] is False
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
    assert elapsed < 2.0
    # Reads are misses, writes are dropped, nothing raises.
    assert cache.get("probe") is None
    cache.set("probe", "lost")


def test_pages_and_metrics_still_answer(admin_client, cache_down):
    assert admin_client.get("/admin/").status_code == 200
    assert admin_client.get("/admin/ops/").status_code == 200
    assert admin_client.get("/metrics").status_code == 200


def test_a_job_accepted_while_the_cache_is_down_is_executed(client, cache_down):
    _, key = create_api_key(name="cache-down-test")

    response = client.post(
        "/api/v1/jobs",
        {"task": "tasks.fx.update_exchange_rates", "kwargs": {}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )

    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    wait_until(
        lambda: TaskResult.objects.filter(task_id=job_id, status="SUCCESS").exists(),
        timeout=60,
        what="the accepted job to succeed",
    )
