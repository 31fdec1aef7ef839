"""Enrol a staff member's second factor: a new authenticator (its QR code and key printed for the
person to scan) and new backup codes, replacing the old ones. For the first staff member of a
site, and for anyone who lost both their phone and their codes; staff enrolled already replace
theirs themselves at /admin/two-factor/."""

import io
from base64 import b32encode

import qrcode
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from staff_auth import two_factor


class Command(BaseCommand):
    help = "Give USERNAME a new authenticator (TOTP) and backup codes; prints them once."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"username: no user named {username!r}")
        if not user.is_staff:
            raise CommandError(f"username: {username!r} is not staff (admin is for staff only)")
        device, codes = two_factor.enrol(user, actor="command:enrol_two_factor")
        qr = qrcode.QRCode(border=1)
        qr.add_data(device.config_url)
        picture = io.StringIO()
        qr.print_ascii(out=picture, invert=True)
        self.stdout.write(f"Scan with an authenticator app (as {username}):\n{picture.getvalue()}")
        self.stdout.write(f"or enter the key: {b32encode(device.bin_key).decode()}")
        self.stdout.write(f"URI: {device.config_url}")
        self.stdout.write("Backup codes (each works once; shown only now):\n  " + "\n  ".join(codes))
