"""Admin's login form: username, password and, where STAFF_TWO_FACTOR_REQUIRED, a code.

One form, one error for every failure (wrong password, wrong or missing code, no authenticator
yet): the answer never tells a guesser that the password was right. A wrong or missing code is a
failed login to django-axes too (Django's user_login_failed signal), so guessing codes with a
stolen password locks the account like guessing passwords does.

ProofForm: the password and a current code again, from a signed-in staff member, before they
replace their second factor; failures count the same way.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate
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


class ProofForm(forms.Form):
    """Fresh proof that the person at a signed-in session is the account's owner: its password and
    a current code (authenticator or backup code; only the password for an account that has
    neither yet, which only `make run`'s settings let sign in). Asked before the session replaces the second
    factor (/admin/two-factor/, staff_auth/views.py), so a stolen session cannot make itself a
    lasting one. A wrong password or code is a failed login to django-axes, like at the login
    form: guessing here locks the account too, and a locked-out account cannot pass."""

    error_message = (
        "Your password and authentication code did not match: enter your current password and a "
        "current code from your authenticator (or a backup code)."
    )

    password = forms.CharField(label="Your password", strip=False, widget=forms.PasswordInput)
    current_code = forms.CharField(
        label="Current authentication code", required=False, strip=True, max_length=32
    )

    def __init__(self, data=None, *, request, user) -> None:
        super().__init__(data)
        self.request, self.user = request, user

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        username = self.user.get_username()
        # Through django-axes' backend: a locked-out account or address is refused, and a wrong
        # password is a failed login (Django's authenticate sends user_login_failed).
        if authenticate(self.request, username=username, password=cleaned["password"]) != self.user:
            raise ValidationError(self.error_message, code="invalid_proof")
        if not two_factor.has_any_factor(self.user):
            return cleaned  # no second factor yet (make run's settings): the password is all there is
        if two_factor.verify_code(self.user, cleaned["current_code"]) is None:
            user_login_failed.send(sender=__name__, credentials={"username": username}, request=self.request)
            raise ValidationError(self.error_message, code="invalid_proof")
        return cleaned
