"""Staff's second factor in tests, the real way: an authenticator (a TOTPDevice with a key the test
knows) and its current code computed as an authenticator app computes it (RFC 6238, django-otp's
TOTP), then admin's login form with username, password and code (staff_auth/forms.py). A session
from force_login has passed no second factor, and admin refuses it (staff_auth/admin_site.py)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from staff_auth.two_factor import AUTHENTICATOR


def enrol_authenticator(user: AbstractBaseUser) -> TOTPDevice:
    """A confirmed authenticator for `user`, with a random key (device.bin_key)."""
    return TOTPDevice.objects.create(user=user, name=AUTHENTICATOR, confirmed=True)


def current_code(key: bytes, *, step: int = 30, digits: int = 6) -> str:
    """The code an authenticator app holding `key` shows now."""
    return f"{TOTP(key, step=step, digits=digits).token():0{digits}d}"


def log_in_to_admin(client: Client, *, username: str, password: str, device: TOTPDevice) -> None:
    """Admin's login form, sent with both factors; fails the test unless it logged in."""
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "code": current_code(device.bin_key)},
    )
    assert response.status_code == 302 and response["Location"] == "/admin/", (
        response.status_code,
        response.content[:2000],
    )


def log_in_staff(client: Client, user: AbstractBaseUser, *, password: str) -> TOTPDevice:
    """Enrol `user` (password `password`) and log `client` in as them with both factors."""
    device = enrol_authenticator(user)
    log_in_to_admin(client, username=user.get_username(), password=password, device=device)
    return device


def force_login_verified(client: Client, user: AbstractBaseUser) -> None:
    """What a login with both factors leaves in the session, without the form: for a process that
    logs in a user who already used this period's code (a code is accepted once). Django's
    force_login, then django-otp's mark of the device that verified the session
    (django_otp.login sets it so)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or enrol_authenticator(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
