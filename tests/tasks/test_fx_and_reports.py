"""Exchange rates and vehicle-history reports as task bodies, against the fake providers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.cache import cache

from billing.exchange_rates import get_rate
from billing.models import ExchangeRate
from jobs.errors import InvalidArgument
from reports.models import VehicleHistoryReport
from tasks import fx, reports
from tests.factories import make_vin
from tests.tasks.conftest import new_job_id, run_body, run_job

pytestmark = pytest.mark.django_db


def test_exchange_rates_are_stored_once_per_pair_and_day_and_readable(fake_fx):
    job_id = new_job_id()

    first = run_body(fx.update_exchange_rates, job_id=job_id)
    run_body(fx.update_exchange_rates, job_id=job_id)

    assert first["stored"] == 6 and first["as_of"] == "2025-06-02"
    assert ExchangeRate.objects.count() == 6
    assert get_rate(base="CAD", quote="XAF") == Decimal("441.25")
    assert len(fake_fx.requests_to("/latest")) == 6  # 3 bases, twice


@pytest.fixture
def vehicle_history_cache_cleared():
    cache.delete_pattern("vehicle_history:*")
    yield
    cache.delete_pattern("vehicle_history:*")


@pytest.mark.usefixtures("vehicle_history_cache_cleared")
def test_vehicle_history_is_bought_once_then_served_from_cache(fake_vehicle_history):
    vin = make_vin()
    job_id = new_job_id()

    first = run_body(reports.fetch_vehicle_history, job_id=job_id, vin=vin.lower())
    second = run_body(reports.fetch_vehicle_history, job_id=job_id, vin=vin)
    third = run_body(reports.fetch_vehicle_history, vin=vin)

    assert (first["source"], first["paid_call"]) == ("provider", True)
    assert second["source"] == third["source"] == "cache" and second["paid_call"] is False
    assert fake_vehicle_history.served[vin] == 1
    assert VehicleHistoryReport.objects.filter(vin=vin).count() == 1


@pytest.mark.parametrize(
    "vin", ["1HGCM82633A00435", "1HGCM82633A0043520", "1HGCM82633A00435O", 12345678901234567]
)
def test_malformed_vin_fails_naming_vin_without_a_paid_call(fake_vehicle_history, vin):
    with pytest.raises(InvalidArgument) as raised:
        run_job(reports.fetch_vehicle_history, vin=vin)
    assert list(raised.value.fields) == ["vin"]
    assert fake_vehicle_history.requests == []
