"""Repeated bad API keys from one address are slowed down (http_api/bad_keys.py, docs/security.md):
API_BAD_KEY_RATE (10/m) bad keys at once, then the address is answered 429 with Retry-After before
its key is looked at, a correct key included; other addresses and requests with no key are not
touched; behind the reverse proxy the client's address counts, not the proxy's; with Redis
unreachable nothing is slowed."""

import pytest
from django.test import Client

from http_api import bad_keys, ratelimit
from integrations.ratelimit import Fallback, Rate
from tests.http_api.conftest import assert_error

pytestmark = pytest.mark.django_db

GUESSER, OTHER = "203.0.113.7", "198.51.100.20"
A_BAD_KEY = "pk_00000000_" + "A" * 43


@pytest.fixture(autouse=True)
def _fresh_buckets():
    for address in (GUESSER, OTHER, "127.0.0.1"):
        ratelimit.reset(bad_keys.bucket(address))
    yield
    for address in (GUESSER, OTHER, "127.0.0.1"):
        ratelimit.reset(bad_keys.bucket(address))


def _tasks(key: str | None, address: str, **headers):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return Client().get("/api/v1/tasks", REMOTE_ADDR=address, **auth, **headers)


def test_ten_bad_keys_are_refused_as_unauthorized_then_the_address_is_slowed_down(api_key):
    for _ in range(10):
        assert_error(_tasks(A_BAD_KEY, GUESSER), 401, "unauthorized")

    slowed = _tasks(A_BAD_KEY, GUESSER)

    details = assert_error(slowed, 429, "rate_limited")
    # One more bad key fits every 6 s at 10/m.
    assert 1 <= int(slowed["Retry-After"]) <= 6 and details == {"retry_after": int(slowed["Retry-After"])}


def test_a_slowed_address_waits_even_with_a_correct_key_and_other_addresses_do_not(api_key):
    for _ in range(11):
        _tasks(A_BAD_KEY, GUESSER)

    assert_error(_tasks(api_key.key, GUESSER), 429, "rate_limited")
    assert _tasks(api_key.key, OTHER).status_code == 200


def test_requests_without_a_key_and_with_the_right_key_spend_nothing(api_key):
    for _ in range(20):
        assert_error(_tasks(None, GUESSER), 401, "unauthorized")
        assert _tasks(api_key.key, GUESSER).status_code == 200

    assert_error(_tasks(A_BAD_KEY, GUESSER), 401, "unauthorized")


def test_behind_the_proxy_the_clients_address_is_counted_not_the_proxys(api_key, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(11):
        _tasks(A_BAD_KEY, "127.0.0.1", HTTP_X_FORWARDED_FOR=GUESSER)

    assert_error(_tasks(api_key.key, "127.0.0.1", HTTP_X_FORWARDED_FOR=GUESSER), 429, "rate_limited")
    assert _tasks(api_key.key, "127.0.0.1", HTTP_X_FORWARDED_FOR=OTHER).status_code == 200


def test_peek_reads_the_bucket_take_spends_at_any_rate():
    """bad_keys asks ratelimit.peek whether an address may go on; ratelimit.take spends the same
    bucket: both name its Redis key and its burst in one place, so the peek sees what take spent."""
    budget = Rate.parse("3/m")
    address = bad_keys.bucket(GUESSER)

    assert ratelimit.peek(address, budget) == 0.0
    assert [ratelimit.take(address, budget) for _ in range(3)] == [0.0, 0.0, 0.0]
    waited = ratelimit.peek(address, budget)
    refused = ratelimit.take(address, budget)

    assert 0 < waited <= 20 and refused > 0  # one more fits every 20 s at 3/m
    assert abs(refused - waited) < 1


def test_with_redis_unreachable_keys_are_checked_as_usual_and_nothing_is_slowed(
    api_key, settings, private_redis, monkeypatch
):
    monkeypatch.setattr(ratelimit, "_fallback", Fallback("api", counter=lambda: None))
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": private_redis.url}}
    private_redis.stop()

    answers = [_tasks(A_BAD_KEY, GUESSER).status_code for _ in range(15)]

    assert answers == [401] * 15, "bad keys refused as bad keys, none slowed past the budget of 10"
    assert _tasks(api_key.key, GUESSER).status_code == 200
