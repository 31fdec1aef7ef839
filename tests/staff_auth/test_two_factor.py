"""The second factor (staff_auth; docs/security.md): admin refuses a session that passed no second
factor, backup codes work once each, a wrong code is a failed login to the throttle, staff replace
their own authenticator at /admin/two-factor/ (only with their password and a current code again),
`enrol_two_factor` enrols from the command line,
`make run`'s settings ask for no code, and `check --deploy` warns when production asks for none."""

from base64 import b32decode
from datetime import timedelta
from io import StringIO

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.core.management import call_command
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditLog
from staff_auth import two_factor
from tests import factories as f
from tests.support.two_factor import current_code, enrol_authenticator, force_login_verified, log_in_staff

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


def _log_in(client, user, code: str, password: str = "pw"):
    return client.post(LOGIN, {"username": user.username, "password": password, "code": code})


def test_a_session_with_a_password_alone_is_not_staff_to_admin_or_the_ops_dashboard(client):
    client.force_login(f.make_user(is_superuser=True))  # what a login without a second factor leaves

    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/ops/")["Location"] == "/admin/login/?next=/admin/ops/"


def test_a_login_with_the_authenticators_code_reaches_admin(client):
    user = f.make_user(is_superuser=True)

    response = _log_in(client, user, current_code(enrol_authenticator(user).bin_key))

    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_staff_member_without_an_authenticator_cannot_log_in_and_is_told_nothing_more(client):
    user = f.make_user(is_superuser=True)

    response = _log_in(client, user, "123456")

    assert response.status_code == 200
    assert "correct username, password and authentication code" in response.content.decode()


def test_a_backup_code_logs_in_once(client):
    user = f.make_user(is_superuser=True)
    enrol_authenticator(user)
    codes = two_factor.new_backup_codes(user, actor="test")

    assert _log_in(client, user, codes[0]).status_code == 302
    client.logout()
    assert _log_in(client, user, codes[0]).status_code == 200, "a spent backup code"
    assert two_factor.backup_codes_left(user) == len(codes) - 1


def test_a_wrong_code_after_the_right_password_counts_as_a_failed_login(client):
    user = f.make_user(is_superuser=True)
    enrol_authenticator(user)

    _log_in(client, user, "000000")

    assert AccessAttempt.objects.get(username=user.username).failures_since_start == 1


def test_the_code_never_reaches_the_throttles_records(client):
    user = f.make_user(is_superuser=True)
    enrol_authenticator(user)

    _log_in(client, user, "271828", password="not the password")

    attempt = AccessAttempt.objects.get(username=user.username)
    assert "271828" not in attempt.post_data and "not the password" not in attempt.post_data


def _start_set_up(client) -> bytes:
    """Start a new authenticator at /admin/two-factor/; its key, as the page shows it."""
    page = client.post(reverse("admin:two_factor"), {"step": "start"}).content.decode()
    assert "<svg" in page, "the QR code to scan"
    return b32decode(page.split('id="totp-secret">', 1)[1].split("<", 1)[0])


def test_staff_replace_their_authenticator_and_the_old_one_stops_working(client):
    user = f.make_user(is_superuser=True)
    old = log_in_staff(client, user, password="pw")
    backup = two_factor.new_backup_codes(user, actor="test")

    key = _start_set_up(client)
    response = client.post(
        reverse("admin:two_factor"),
        {"step": "confirm", "code": current_code(key), "password": "pw", "current_code": backup[0]},
    )

    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200, "the session stays verified, by the new device"
    [device] = TOTPDevice.objects.filter(user=user)
    assert device.bin_key == key and device.confirmed and device.pk != old.pk
    assert AuditLog.objects.filter(action="two_factor_enrolled", object_id=str(user.pk)).exists()


def test_the_current_authenticators_code_is_proof_enough_to_replace_it(client):
    user = f.make_user(is_superuser=True)
    old = enrol_authenticator(user)
    force_login_verified(client, user)  # verified without spending this period's code

    key = _start_set_up(client)
    response = client.post(
        reverse("admin:two_factor"),
        {
            "step": "confirm",
            "code": current_code(key),
            "password": "pw",
            "current_code": current_code(old.bin_key),
        },
    )

    assert response.status_code == 302
    assert [device.bin_key for device in TOTPDevice.objects.filter(user=user)] == [key]


@pytest.mark.parametrize(
    "proof",
    [{}, {"password": "pw"}, {"current_code": "BACKUP"}, {"password": "wrong", "current_code": "BACKUP"}],
    ids=["none", "password-only", "code-only", "wrong-password"],
)
def test_a_verified_session_without_fresh_proof_cannot_replace_the_authenticator(client, proof):
    """A stolen session must not become a lasting second factor: the password and a current code
    are asked again, and without them the old authenticator stays and the new one never works."""
    user = f.make_user(is_superuser=True)
    old = log_in_staff(client, user, password="pw")
    [backup, *_] = two_factor.new_backup_codes(user, actor="test")
    key = _start_set_up(client)
    proof = {name: backup if value == "BACKUP" else value for name, value in proof.items()}

    page = client.post(
        reverse("admin:two_factor"), {"step": "confirm", "code": current_code(key), **proof}
    ).content.decode()

    assert list(TOTPDevice.objects.filter(user=user, confirmed=True)) == [old]
    assert "enter your current password and a current code" in page or "This field is required" in page
    assert not AuditLog.objects.filter(action="two_factor_enrolled").exists()


def test_a_verified_session_without_fresh_proof_cannot_issue_backup_codes(client):
    user = f.make_user(is_superuser=True)
    log_in_staff(client, user, password="pw")
    old = two_factor.new_backup_codes(user, actor="test")

    refused = [
        client.post(reverse("admin:two_factor"), {"step": "backup_codes", **proof}).content.decode()
        for proof in ({}, {"password": "pw"}, {"password": "pw", "current_code": "000000"})
    ]

    assert all('id="backup-codes"' not in page for page in refused)
    assert "enter your current password and a current code" in refused[2]
    assert "This field is required" in refused[0]
    assert two_factor.backup_codes_left(user) == len(old)
    assert two_factor.verify_code(user, old[0]) is not None, "the codes in hand still work"


def test_a_wrong_proof_counts_as_a_failed_login(client):
    user = f.make_user(is_superuser=True)
    log_in_staff(client, user, password="pw")
    [backup, *_] = two_factor.new_backup_codes(user, actor="test")

    client.post(
        reverse("admin:two_factor"), {"step": "backup_codes", "password": "wrong", "current_code": backup}
    )
    client.post(
        reverse("admin:two_factor"), {"step": "backup_codes", "password": "pw", "current_code": "000000"}
    )

    attempt = AccessAttempt.objects.get(username=user.username)
    assert attempt.failures_since_start == 2
    assert backup not in attempt.post_data and "wrong" not in attempt.post_data
    assert two_factor.verify_code(user, backup) is not None, "a wrong password spends no backup code"


def test_a_wrong_code_leaves_the_old_authenticator_in_place(client):
    user = f.make_user(is_superuser=True)
    old = log_in_staff(client, user, password="pw")
    [backup, *_] = two_factor.new_backup_codes(user, actor="test")
    _start_set_up(client)

    page = client.post(
        reverse("admin:two_factor"),
        {"step": "confirm", "code": "000000", "password": "pw", "current_code": backup},
    ).content.decode()

    assert "not the current one" in page
    assert list(TOTPDevice.objects.filter(user=user, confirmed=True)) == [old]


def test_staff_issue_new_backup_codes_and_the_old_ones_stop_working(client):
    user = f.make_user(is_superuser=True)
    log_in_staff(client, user, password="pw")
    old = two_factor.new_backup_codes(user, actor="test")

    page = client.post(
        reverse("admin:two_factor"), {"step": "backup_codes", "password": "pw", "current_code": old[0]}
    ).content.decode()

    new = page.split('id="backup-codes">', 1)[1].split("</ul>", 1)[0]
    assert new.count("<code>") == two_factor.BACKUP_CODE_COUNT
    assert not any(code in new for code in old)
    assert two_factor.verify_code(user, old[1]) is None


def test_enrol_two_factor_prints_the_key_and_backup_codes_that_then_log_in(client):
    user = f.make_user(is_superuser=True)
    out = StringIO()

    call_command("enrol_two_factor", user.username, stdout=out)

    printed = out.getvalue()
    key = b32decode(printed.split("or enter the key: ", 1)[1].split()[0])
    assert "otpauth://totp/" in printed
    backup = printed.split("shown only now):", 1)[1].split()
    assert len(backup) == two_factor.BACKUP_CODE_COUNT
    assert _log_in(client, user, current_code(key)).status_code == 302
    assert AuditLog.objects.filter(actor="command:enrol_two_factor", action="backup_codes_issued").exists()


def test_enrol_two_factor_names_a_user_who_is_not_staff():
    user = f.make_user()

    with pytest.raises(Exception, match="username: .* is not staff"):
        call_command("enrol_two_factor", user.username, stdout=StringIO())


def test_a_staff_member_with_no_second_factor_yet_proves_it_with_the_password_alone(client, settings):
    """make run's settings sign in staff with no authenticator: their first one takes the password."""
    settings.STAFF_TWO_FACTOR_REQUIRED = False
    user = f.make_user(is_superuser=True)
    assert client.post(LOGIN, {"username": user.username, "password": "pw"}).status_code == 302
    key = _start_set_up(client)

    wrong = client.post(
        reverse("admin:two_factor"), {"step": "confirm", "code": current_code(key), "password": "x"}
    )
    right = client.post(
        reverse("admin:two_factor"), {"step": "confirm", "code": current_code(key), "password": "pw"}
    )

    assert wrong.status_code == 200 and right.status_code == 302
    assert [device.bin_key for device in TOTPDevice.objects.filter(user=user, confirmed=True)] == [key]


def test_after_a_wrong_code_the_device_refuses_even_the_right_one_for_a_while(client, settings):
    """django-otp's throttle: after a wrong code a device accepts none for OTP_TOTP_THROTTLE_FACTOR
    seconds, doubling with each further failure. The platform keeps the default factor, 1 s; the
    test sets 60 so that a slow machine cannot outlast the wait, then moves the failure back."""
    assert not hasattr(django_settings, "OTP_TOTP_THROTTLE_FACTOR"), "the default, 1 s, is what docs say"
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    user = f.make_user(is_superuser=True)
    device = enrol_authenticator(user)

    assert _log_in(client, user, "000000").status_code == 200
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
    assert _log_in(client, user, current_code(device.bin_key)).status_code == 200, "the right code, refused"

    device.refresh_from_db()
    device.throttling_failure_timestamp -= timedelta(seconds=60)
    device.save()
    assert _log_in(client, user, current_code(device.bin_key)).status_code == 302
