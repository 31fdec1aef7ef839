"""Staff passwords follow Django's validators (config/settings/base.py AUTH_PASSWORD_VALIDATORS):
at least 12 characters, not a common password, not all digits, not like the user's own details.
Every form that sets a password applies them; admin's "change password" form shows it."""

import pytest
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from tests import factories as f

pytestmark = pytest.mark.django_db


def _codes(password: str, user=None) -> set[str]:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        return {error.code for error in exc.error_list}
    return set()


def test_a_password_shorter_than_12_characters_is_refused():
    assert _codes("Tr0ub4dor&3") == {"password_too_short"}  # 11 characters
    assert _codes("Tr0ub4dor&3x") == set()


def test_a_common_password_is_refused_however_long():
    assert _codes("password1234") == {"password_too_common"}


def test_an_all_digit_password_is_refused():
    assert "password_entirely_numeric" in _codes("830265194417")


def test_a_password_like_the_users_own_name_or_email_is_refused():
    user = f.make_user(username="ngozi.okafor")  # e-mail ngozi.okafor@example.com

    assert _codes("ngozi.okafor1", user) == {"password_too_similar"}
    assert _codes("harbour-lights-douala", user) == set()


def test_admins_change_password_form_names_the_rule_the_new_password_breaks():
    user = f.make_user(is_staff=True)
    form = AdminPasswordChangeForm(user, {"password1": "short1", "password2": "short1"})

    assert not form.is_valid()
    assert "at least 12 characters" in " ".join(form.errors["password2"])
