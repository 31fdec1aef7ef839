"""billing/exchange_rates.py: rates fetched, stored once per pair and day, read cache first."""

from datetime import date
from decimal import Decimal

import pytest

from billing.exchange_rates import get_rate, update_exchange_rates
from billing.models import ExchangeRate
from integrations.cache import cache_counts, cache_delete
from integrations.errors import TransientError

PAIRS = [(b, q) for b in ("CAD", "USD", "XAF") for q in ("CAD", "USD", "XAF") if b != q]


@pytest.fixture(autouse=True)
def _empty_rate_cache():
    for base, quote in PAIRS:
        cache_delete("exchange_rates", f"{base}:{quote}")
    yield
    for base, quote in PAIRS:
        cache_delete("exchange_rates", f"{base}:{quote}")


@pytest.mark.django_db
def test_rates_between_every_pair_are_stored_for_the_providers_date(
    fake_fx, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        update_exchange_rates()

    rows = {(r.base, r.quote): r for r in ExchangeRate.objects.all()}
    assert set(rows) == set(PAIRS)
    assert rows["CAD", "XAF"].rate == Decimal("441.25")
    assert rows["XAF", "CAD"].rate == Decimal("0.002266")
    assert {r.as_of for r in rows.values()} == {date(2025, 6, 2)}
    assert rows["CAD", "USD"].source == fake_fx.url.removeprefix("http://")
    assert [r.query["base"][0] for r in fake_fx.requests] == ["CAD", "USD", "XAF"]


@pytest.mark.django_db
def test_a_second_run_on_the_same_day_updates_the_same_rows(fake_fx):
    update_exchange_rates()
    fake_fx.per_cad["USD"] = "0.7400"

    update_exchange_rates()

    assert ExchangeRate.objects.count() == len(PAIRS)
    assert ExchangeRate.objects.get(base="CAD", quote="USD").rate == Decimal("0.74")


@pytest.mark.django_db
def test_get_rate_reads_the_cache_first_then_the_database(fake_fx, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        update_exchange_rates()
    # Change the stored row behind the cache's back: a cached read must not see it.
    ExchangeRate.objects.filter(base="CAD", quote="USD").update(rate=Decimal("0.9"))
    hits_before = cache_counts("exchange_rates")["hit"]

    assert get_rate(base="CAD", quote="USD") == Decimal("0.7312")
    assert cache_counts("exchange_rates")["hit"] - hits_before == 1

    cache_delete("exchange_rates", "CAD:USD")
    assert get_rate(base="CAD", quote="USD") == Decimal("0.9")  # miss: from the database
    assert get_rate(base="cad", quote="usd") == Decimal("0.9")  # and cached again
    assert cache_counts("exchange_rates")["hit"] - hits_before == 2


@pytest.mark.django_db
def test_get_rate_of_a_currency_to_itself_is_one_and_of_an_unknown_pair_none(fake_fx):
    assert get_rate(base="USD", quote="USD") == Decimal(1)
    assert get_rate(base="USD", quote="XAF") is None


@pytest.mark.django_db
def test_a_provider_failure_stores_nothing(fake_fx):
    fake_fx.fail_next(503, {"error": {"code": "unavailable", "message": "later"}}, times=1)
    fake_fx.requests.clear()

    with pytest.raises(TransientError):
        update_exchange_rates()

    assert ExchangeRate.objects.count() == 0
