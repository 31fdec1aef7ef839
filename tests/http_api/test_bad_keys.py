"""Repeated bad API keys from one address are slowed down (http_api/bad_keys.py, docs/security.md):
API_BAD_KEY_RATE (10/m) bad keys at once, then the address is answered 429 with Retry-After before
its key is looked at, a correct key included; other addresses and requests with no key are not
touched; behind the reverse proxy the client's address counts, not the proxy's."""

import pytest
from django.test import Client

from http_api import bad_keys, ratelimit
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
