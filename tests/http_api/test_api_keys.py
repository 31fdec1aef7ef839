"""API keys: printed once, only a hash stored, revoked at once, compared in constant time, and
visible (never their secret) in admin with their last use."""

from __future__ import annotations

import hashlib
import io
import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from django_redis import get_redis_connection

from http_api import keys
from http_api.models import ApiKey
from tests.http_api.conftest import assert_error, post_job

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_the_key_once_and_stores_only_its_sha256():
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "dealer-portal", stdout=out, stderr=err)

    key = out.getvalue().strip()
    row = ApiKey.objects.get(name="dealer-portal")
    assert keys.KEY_RE.match(key)
    assert key.startswith(f"pk_{row.prefix}_")
    assert row.hashed_secret == hashlib.sha256(key.encode()).hexdigest()
    secret = key.split("_", 2)[2]
    assert all(secret not in str(value) for value in ApiKey.objects.values().get().values())
    assert "cannot be shown again" in err.getvalue()
    assert Client(HTTP_AUTHORIZATION=f"Bearer {key}").get("/api/v1/tasks").status_code == 200


def test_create_api_key_refuses_a_name_in_use():
    call_command("create_api_key", "twice", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_api_key", "twice", stdout=io.StringIO(), stderr=io.StringIO())


def test_a_revoked_key_is_refused_on_the_very_next_request(api, api_key):
    assert api.get("/api/v1/tasks").status_code == 200

    call_command("revoke_api_key", api_key.row.name, stdout=io.StringIO())

    assert_error(api.get("/api/v1/tasks"), 401, "unauthorized")
    assert ApiKey.objects.get(pk=api_key.row.pk).revoked_at is not None


def test_revoke_api_key_names_an_unknown_key():
    with pytest.raises(CommandError, match="no key named"):
        call_command("revoke_api_key", "ghost", stdout=io.StringIO())


class _Spy:
    """Counts calls to a standard-library function and records its arguments, then calls it."""

    def __init__(self, real) -> None:
        self.real, self.calls = real, []

    def __call__(self, *args):
        self.calls.append(args)
        return self.real(*args)


@pytest.mark.parametrize(
    "presented",
    [
        "right-prefix-wrong-secret",
        "pk_00000000_" + "A" * 43,  # well-formed, no such prefix
        "pk_garbage",  # malformed
        "",
    ],
)
def test_every_wrong_key_costs_one_hash_and_one_full_length_comparison(api_key, monkeypatch, presented):
    if presented == "right-prefix-wrong-secret":
        presented = f"pk_{api_key.row.prefix}_" + "B" * 43
    hashes, compares = _Spy(hashlib.sha256), _Spy(keys.compare_digest)
    monkeypatch.setattr(keys, "sha256", hashes)
    monkeypatch.setattr(keys, "compare_digest", compares)

    assert keys.authenticate(presented) is None

    # No early exit on a missing or unknown prefix: the same work as for a real key.
    assert len(hashes.calls) == 1 and len(compares.calls) == 1
    presented_digest, expected_digest = compares.calls[0]
    assert len(presented_digest) == len(expected_digest) == 64


def test_the_right_key_costs_the_same_one_hash_and_one_comparison(api_key, monkeypatch):
    hashes, compares = _Spy(hashlib.sha256), _Spy(keys.compare_digest)
    monkeypatch.setattr(keys, "sha256", hashes)
    monkeypatch.setattr(keys, "compare_digest", compares)

    assert keys.authenticate(api_key.key) == api_key.row
    assert len(hashes.calls) == 1 and len(compares.calls) == 1


def test_last_used_is_stamped_at_most_once_a_minute(api, api_key):
    api.get("/api/v1/tasks")
    first = ApiKey.objects.get(pk=api_key.row.pk).last_used_at
    assert first is not None

    api.get("/api/v1/tasks")
    assert ApiKey.objects.get(pk=api_key.row.pk).last_used_at == first

    ApiKey.objects.filter(pk=api_key.row.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    keys.forget(api_key.row.prefix)  # this process read the row a moment ago: make it read again
    api.get("/api/v1/tasks")
    assert ApiKey.objects.get(pk=api_key.row.pk).last_used_at > first


def test_an_authenticated_request_within_the_minute_writes_nothing(api, api_key, django_assert_num_queries):
    api.get("/api/v1/tasks")
    # The key row was read a moment ago (kept up to API_KEY_CACHE_SECONDS): no SELECT, no UPDATE.
    with django_assert_num_queries(0):
        assert api.get("/api/v1/tasks").status_code == 200


def test_admin_lists_keys_with_last_use_but_never_the_hash(admin_client, api_key):
    listing = admin_client.get("/admin/http_api/apikey/")
    page = admin_client.get(f"/admin/http_api/apikey/{api_key.row.pk}/change/")

    assert listing.status_code == page.status_code == 200
    for response in (listing, page):
        text = response.content.decode()
        assert api_key.row.name in text and f"pk_{api_key.row.prefix}_" in text
        assert api_key.row.hashed_secret not in text and api_key.key not in text
    assert "Last used" in listing.content.decode()
    assert admin_client.get("/admin/http_api/apikey/add/").status_code == 403


def test_admin_revoke_action_takes_effect_at_once(admin_client, api, api_key):
    response = admin_client.post(
        "/admin/http_api/apikey/", {"action": "revoke_selected", "_selected_action": [api_key.row.pk]}
    )

    assert response.status_code == 302
    assert_error(api.get("/api/v1/tasks"), 401, "unauthorized")


def _revoke_elsewhere(row: ApiKey, *, announce: bool) -> None:
    """What another process's revocation leaves for this one: the row updated (this process's
    cache not told), and with `announce` the generation bumped in Redis as keys.forget does."""
    ApiKey.objects.filter(pk=row.pk).update(revoked_at=timezone.now())
    if announce:
        get_redis_connection("default").incr(keys.GENERATION_KEY)


def test_a_key_revoked_by_another_process_is_refused_on_the_next_request(api, api_key):
    assert api.get("/api/v1/tasks").status_code == 200  # the row is now cached here
    assert api.get("/api/v1/tasks").status_code == 200

    _revoke_elsewhere(api_key.row, announce=True)

    assert_error(api.get("/api/v1/tasks"), 401, "unauthorized")
    assert_error(post_job(api, {"task": "tasks.fx.update_exchange_rates"}), 401, "unauthorized")


def test_a_key_revoked_unannounced_is_refused_within_a_second(api, api_key, settings):
    settings.API_RATE_LIMIT = "100000/s"  # the loop below asks as fast as it can
    # No Redis message reaches this process (Redis down, or a row edited by hand): the cache's
    # lifetime alone bounds how long the key still works (docs/contract.md section 3).
    assert api.get("/api/v1/tasks").status_code == 200
    _revoke_elsewhere(api_key.row, announce=False)
    revoked_at = time.monotonic()

    deadline = revoked_at + 3.0
    status = 200
    while status == 200 and time.monotonic() < deadline:
        status = api.get("/api/v1/tasks").status_code
    refused_after = time.monotonic() - revoked_at

    assert status == 401
    assert keys.cache_seconds() <= 1.0
    assert refused_after <= 1.0 + 0.25, refused_after  # a request's own time on a busy machine
