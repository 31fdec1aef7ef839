"""Admin's login form: username, password and, where STAFF_TWO_FACTOR_REQUIRED, a code.

One form, one error for every failure (wrong password, wrong or missing code, no authenticator
yet): the answer never tells a guesser that the password was right. A wrong or missing code is a
failed login to django-axes too (Django's user_login_failed signal), so guessing codes with a
stolen password locks the account like guessing passwords does.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError

from staff_auth import two_factor


class StaffLoginForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": (
            "Please enter the correct %(username)s, password and authentication code for a staff "
            "account. Note that the fields may be case-sensitive."
        ),
    }

    code = forms.CharField(
        label="Authentication code",
        required=False,
        strip=True,
        max_length=32,
        help_text="The 6-digit code of your authenticator app, or one of your backup codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "none"}),
    )

    def clean(self):
        cleaned = super().clean()  # the password, through django-axes' backend; staff only
        user = self.get_user()
        code = cleaned.get("code", "")
        if user is None or (not code and not settings.STAFF_TWO_FACTOR_REQUIRED):
            return cleaned
        device = two_factor.verify_code(user, code)
        if device is None:
            user_login_failed.send(
                sender=__name__, credentials={"username": user.get_username()}, request=self.request
            )
            self.user_cache = None
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )
        # django-otp's user_logged_in receiver marks the session verified by this device.
        user.otp_device = device
        return cleaned
