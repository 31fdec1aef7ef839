"""reports/vehicle_history.py: one paid call per VIN per 24 h, served from cache, else database."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from integrations import ratelimit
from integrations.cache import cache_counts, cache_delete
from integrations.errors import PermanentError, RateLimited
from reports.models import VehicleHistoryReport
from reports.services import store_report
from reports.vehicle_history import PAID_CALLS, get_vehicle_history, paid_call_counts
from tests.factories import make_vin
from tests.support.fakes.vehicle_history import API_KEY

VIN = "2T1BURHE0JC034461"


@pytest.fixture(autouse=True)
def _fresh_cache_entry():
    cache_delete("vehicle_history", VIN)
    yield
    cache_delete("vehicle_history", VIN)


def _paid_calls() -> float:
    return PAID_CALLS.labels("vehicle_history_api")._value.get()


@pytest.mark.django_db
def test_a_report_is_bought_once_however_many_times_it_is_asked_for(fake_vehicle_history):
    paid_before, counts_before = _paid_calls(), cache_counts("vehicle_history")

    answers = [get_vehicle_history(vin=VIN) for _ in range(5)]

    assert fake_vehicle_history.served[VIN] == 1
    assert [a.source for a in answers] == ["provider", "cache", "cache", "cache", "cache"]
    assert {a.report_id for a in answers} == {answers[0].report_id}
    assert answers[-1].payload["vin"] == VIN
    assert _paid_calls() - paid_before == 1
    assert paid_call_counts() == {"paid": 1, "free": 0}
    counts = cache_counts("vehicle_history")
    assert (counts["hit"] - counts_before["hit"], counts["miss"] - counts_before["miss"]) == (4, 1)


@pytest.mark.django_db
def test_without_a_cache_entry_a_report_younger_than_24h_is_served_from_the_database(fake_vehicle_history):
    stored = store_report(
        vin=VIN,
        provider="vehicle_history_api",
        payload={"vin": VIN},
        paid_call=True,
        fetched_at=timezone.now() - timedelta(hours=23),
    )

    answer = get_vehicle_history(vin=VIN)

    assert (answer.source, answer.report_id) == ("database", stored.pk)
    assert fake_vehicle_history.requests == []
    assert get_vehicle_history(vin=VIN).source == "cache"


@pytest.mark.django_db
def test_a_report_older_than_24h_is_bought_again(fake_vehicle_history):
    store_report(
        vin=VIN,
        provider="vehicle_history_api",
        payload={"vin": VIN},
        paid_call=True,
        fetched_at=timezone.now() - timedelta(hours=25),
    )

    answer = get_vehicle_history(vin=VIN)

    assert answer.source == "provider"
    assert fake_vehicle_history.served[VIN] == 1
    assert VehicleHistoryReport.objects.filter(vin=VIN).count() == 2


@pytest.mark.django_db
def test_with_redis_stopped_the_report_is_served_from_the_database_with_a_miss_counted(
    fake_vehicle_history, settings, private_redis
):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": private_redis.url}}
    first = get_vehicle_history(vin=VIN)
    assert get_vehicle_history(vin=VIN).source == "cache"  # the cache works while Redis is up
    private_redis.stop()
    misses_before = cache_counts("vehicle_history")["miss"]

    answers = [get_vehicle_history(vin=VIN) for _ in range(3)]

    assert [a.source for a in answers] == ["database"] * 3
    assert {a.report_id for a in answers} == {first.report_id}
    assert cache_counts("vehicle_history")["miss"] - misses_before == 3
    assert fake_vehicle_history.served[VIN] == 1  # still one paid call


@pytest.mark.django_db
def test_with_redis_stopped_reports_are_bought_only_within_this_processs_share_of_the_limit(
    fake_vehicle_history, settings, private_redis, monkeypatch
):
    """Redis away (issue 21): paid calls go on, but metered by this process's share of the limit
    (integrations/ratelimit.py's fallback), never unmetered: 30/m over 4 processes is 7 a minute."""
    monkeypatch.setattr(ratelimit, "_fallback", ratelimit.Fallback("integrations", counter=lambda: None))
    settings.RATE_LIMITS = {"vehicle_history": "30/m"}
    settings.RATE_LIMIT_FALLBACK_PROCESSES = 4
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": private_redis.url}}
    private_redis.stop()
    vins = [make_vin() for _ in range(8)]

    for vin in vins[:7]:
        assert get_vehicle_history(vin=vin).source == "provider"
    with pytest.raises(RateLimited):
        get_vehicle_history(vin=vins[7])

    assert len(fake_vehicle_history.requests) == 7
    assert not VehicleHistoryReport.objects.filter(vin=vins[7]).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_askers_for_one_vin_pay_for_it_once(fake_vehicle_history):
    if connection.vendor != "postgresql":
        pytest.fail("the per-VIN lock is a PostgreSQL advisory lock: run this test on PostgreSQL")
    fake_vehicle_history.delay_next(0.5)  # the first purchase is slow: the others arrive meanwhile
    answers, errors = [], []

    def ask():
        try:
            answers.append(get_vehicle_history(vin=VIN))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert fake_vehicle_history.served[VIN] == 1
    assert sorted(a.source for a in answers).count("provider") == 1
    assert VehicleHistoryReport.objects.filter(vin=VIN).count() == 1


@pytest.mark.django_db
def test_an_invalid_vin_is_a_permanent_error_naming_the_field(fake_vehicle_history):
    with pytest.raises(PermanentError, match="vin must be a VIN: 17 letters and digits"):
        get_vehicle_history(vin="NOT-A-VIN")


def test_the_fake_requires_the_configured_key():
    assert API_KEY.startswith("vh_test_")
