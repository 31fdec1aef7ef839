"""Login throttling (django-axes; staff_auth/throttling.py): failures counted per username and per
address; at the limit both the username and the address are refused, the right password
included, until the cool-off has passed since the last failure or staff unlock them; each
lockout and each unlock is one audit entry. The browser test (tests/browser/test_staff_sign_in.py)
shows the same through the pages."""

import logging
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.utils import timezone

from audit.models import AuditLog
from staff_auth.addresses import client_address
from staff_auth.throttling import LOCKOUT_ACTOR
from tests import factories as f
from tests.support.two_factor import current_code, enrol_authenticator, log_in_staff

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


def _log_in(client, username: str, password: str, code: str = "", address: str = "198.51.100.9"):
    return client.post(LOGIN, {"username": username, "password": password, "code": code}, REMOTE_ADDR=address)


def _lock_out(client, username: str, address: str = "203.0.113.7") -> None:
    for guess in range(settings.AXES_FAILURE_LIMIT):
        _log_in(client, username, f"guess {guess}", address=address)


@pytest.fixture
def staff(db):
    user = f.make_user(is_superuser=True)
    return user, enrol_authenticator(user)


def test_the_limit_is_ten_failures_and_a_lockout_refuses_the_right_password(client, staff):
    user, device = staff
    assert settings.AXES_FAILURE_LIMIT == 10
    for guess in range(9):
        assert _log_in(client, user.username, f"guess {guess}").status_code == 200
    assert _log_in(client, user.username, "guess 9").status_code == 429

    refused = _log_in(client, user.username, "pw", current_code(device.bin_key), address="192.0.2.44")

    assert refused.status_code == 429 and "locked after 10 failed logins" in refused.content.decode()


def test_an_address_is_locked_for_every_username_it_tries(client, staff):
    user, device = staff
    for n in range(settings.AXES_FAILURE_LIMIT):
        _log_in(client, f"someone-{n}", "guess", address="203.0.113.7")

    assert (
        _log_in(client, user.username, "pw", current_code(device.bin_key), address="203.0.113.7").status_code
        == 429
    )
    assert (
        _log_in(client, user.username, "pw", current_code(device.bin_key), address="192.0.2.44").status_code
        == 302
    )


def test_a_lockout_ends_once_its_cool_off_has_passed_since_the_last_failure(client, staff):
    user, device = staff
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=30)
    _lock_out(client, user.username)
    # The lockout as it stands 30 minutes and a second later (the production setting, unshortened).
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )

    response = _log_in(client, user.username, "pw", current_code(device.bin_key))

    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_a_lockout_is_audited_once_however_many_tries_follow_it(client, staff):
    user, _ = staff
    _lock_out(client, user.username)
    _log_in(client, user.username, "one more")
    _log_in(client, user.username, "and another")

    [entry] = AuditLog.objects.filter(action="login_locked_out")
    assert entry.actor == LOCKOUT_ACTOR
    assert entry.object_type == "axes.accessattempt"
    assert entry.changes == {
        "username": [None, user.username],
        "ip_address": [None, "203.0.113.7"],
        "failures": [None, 10],
    }


def test_staff_unlock_an_address_from_admin_and_the_unlock_is_audited(client, staff):
    user, device = staff
    _lock_out(client, "nobody-in-particular", address="203.0.113.7")
    lead = f.make_user(is_superuser=True)
    log_in_staff(client, lead, password="pw")
    attempt = AccessAttempt.objects.get(ip_address="203.0.113.7")

    response = client.post(
        "/admin/axes/accessattempt/", {"action": "unlock_addresses", "_selected_action": [attempt.pk]}
    )

    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(ip_address="203.0.113.7").exists()
    entry = AuditLog.objects.get(action="login_unlocked")
    assert entry.actor == lead.username
    assert entry.changes == {"ip_address": ["203.0.113.7", "203.0.113.7"], "failures": [10, 0]}
    client.logout()
    assert (
        _log_in(client, user.username, "pw", current_code(device.bin_key), address="203.0.113.7").status_code
        == 302
    )


def test_staff_without_the_delete_permission_cannot_unlock(client, staff):
    _lock_out(client, "nobody-in-particular")
    viewer = f.make_user(is_staff=True)
    viewer.user_permissions.add(*_permissions("view_accessattempt"))
    log_in_staff(client, viewer, password="pw")
    attempt = AccessAttempt.objects.get()

    client.post(
        "/admin/axes/accessattempt/", {"action": "unlock_usernames", "_selected_action": [attempt.pk]}
    )

    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()
    assert not AuditLog.objects.filter(action="login_unlocked").exists()


def test_a_successful_login_forgets_that_usernames_earlier_failures(client, staff):
    user, device = staff
    for guess in range(3):
        _log_in(client, user.username, f"guess {guess}", address="192.0.2.44")

    _log_in(client, user.username, "pw", current_code(device.bin_key), address="192.0.2.44")

    assert not AccessAttempt.objects.filter(username=user.username).exists()


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        (0, "192.0.2.1", "203.0.113.7", "192.0.2.1"),  # no proxy: the header is the client's own words
        (1, "127.0.0.1", "203.0.113.7", "203.0.113.7"),
        (1, "127.0.0.1", "10.9.9.9, 203.0.113.7", "203.0.113.7"),  # the leftmost was written by the client
        (2, "127.0.0.1", "10.9.9.9, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (2, "127.0.0.1", "203.0.113.7", "127.0.0.1"),  # fewer entries than proxies: not our proxies' header
        (1, "127.0.0.1", "not an address", None),
    ],
)
def test_the_client_address_is_the_one_the_trusted_proxies_saw(
    rf, settings, proxies, remote, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = rf.get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)

    assert client_address(request) == expected


def _permissions(*codenames: str):
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="axes", codename__in=codenames)


def test_axes_log_lines_mask_the_username_and_the_address(client, staff, caplog):
    user, _device = staff
    address = "203.0.113.77"

    with caplog.at_level(logging.DEBUG, logger="axes"):
        _log_in(client, user.username, "wrong password", address=address)

    lines = [record.getMessage() for record in caplog.records if record.name.startswith("axes")]
    assert any("login failure" in line.lower() for line in lines), lines
    assert not any(user.username in line or address in line for line in lines), lines
    assert any('username: "****' in line and 'ip_address: "****' in line for line in lines), lines
