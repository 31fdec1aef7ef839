"""Staff's second factor: an authenticator app (TOTP, RFC 6238) and single-use backup codes.

A staff member has at most one authenticator (a confirmed TOTPDevice named AUTHENTICATOR) and one
set of BACKUP_CODE_COUNT backup codes (a StaticDevice): enrolling again replaces them. A code is
checked against the device its shape names (six digits: the authenticator; anything else: a
backup code, spent by its use), so a mistyped code never counts as a failure against the other.
django-otp throttles each device after a wrong code (its ThrottlingMixin); django-axes counts the
wrong code as a failed login (staff_auth/forms.py).
"""

from __future__ import annotations

import io
import re

import qrcode
import qrcode.image.svg
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.services import record_audit

AUTHENTICATOR = "authenticator"
BACKUP_CODES = "backup codes"
BACKUP_CODE_COUNT = 10
TOTP_CODE = re.compile(r"^\d{6}$")


def has_second_factor(user: AbstractBaseUser) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def has_any_factor(user: AbstractBaseUser) -> bool:
    """An authenticator or an unspent backup code: something that can prove it is `user`."""
    return has_second_factor(user) or backup_codes_left(user) > 0


def verify_code(user: AbstractBaseUser, code: str) -> Device | None:
    """The device that accepts `code` for `user` (a backup code is spent), else None."""
    code = re.sub(r"[\s-]", "", code or "").lower()
    if not code:
        return None
    if TOTP_CODE.match(code):
        devices = TOTPDevice.objects.filter(user=user, confirmed=True)
    else:
        devices = StaticDevice.objects.filter(user=user, confirmed=True)
    for device in devices:
        allowed, _ = device.verify_is_allowed()
        if allowed and device.verify_token(code):
            return device
    return None


def start_enrolment(user: AbstractBaseUser) -> TOTPDevice:
    """A new authenticator for `user`, unconfirmed until confirm_enrolment sees a code from it;
    any earlier unconfirmed one is dropped."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=AUTHENTICATOR, confirmed=False)


def confirm_enrolment(*, device: TOTPDevice, code: str, actor: str) -> bool:
    """Confirm `device` if `code` is its current code: it replaces the user's authenticator."""
    if not TOTP_CODE.match((code or "").strip()) or not device.verify_token(code.strip()):
        return False
    with transaction.atomic():
        TOTPDevice.objects.filter(user=device.user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        record_audit(
            actor=actor, action="two_factor_enrolled", obj=device.user, changes={"device": [None, "totp"]}
        )
    return True


def enrol(user: AbstractBaseUser, *, actor: str) -> tuple[TOTPDevice, list[str]]:
    """A confirmed authenticator and new backup codes for `user` at once (an administrator's
    enrolment: manage.py enrol_two_factor), replacing any earlier ones."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        device = TOTPDevice.objects.create(user=user, name=AUTHENTICATOR, confirmed=True)
        record_audit(actor=actor, action="two_factor_enrolled", obj=user, changes={"device": [None, "totp"]})
        codes = new_backup_codes(user, actor=actor)
    return device, codes


def new_backup_codes(user: AbstractBaseUser, *, actor: str) -> list[str]:
    """BACKUP_CODE_COUNT new single-use codes for `user`; the earlier ones stop working."""
    with transaction.atomic():
        device, _ = StaticDevice.objects.get_or_create(
            user=user, name=BACKUP_CODES, defaults={"confirmed": True}
        )
        device.token_set.all().delete()
        codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
        record_audit(
            actor=actor, action="backup_codes_issued", obj=user, changes={"backup_codes": [None, len(codes)]}
        )
    return codes


def backup_codes_left(user: AbstractBaseUser) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def qr_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// URI as an inline SVG QR code, for an authenticator app to scan."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    out = io.BytesIO()
    image.save(out)
    svg = out.getvalue().decode()
    return svg[svg.index("<svg") :]  # without the XML declaration, to sit inside the page
