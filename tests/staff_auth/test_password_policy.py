"""Staff passwords follow Django's validators (config/settings/base.py AUTH_PASSWORD_VALIDATORS):
at least 12 characters, not a common password, not all digits, not like the user's own details.
Admin's "change password" form applies them and names the rule; so do the `changepassword` and
(interactive) `createsuperuser` commands."""

import builtins
import getpass
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.management.commands import changepassword
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from tests import factories as f

pytestmark = pytest.mark.django_db
User = get_user_model()


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


def test_changepassword_names_the_rule_and_refuses_a_short_password(monkeypatch):
    """`manage.py changepassword` calls validate_password on what is typed (getpass: the terminal)."""
    user = f.make_user(is_staff=True)
    monkeypatch.setattr(changepassword.Command, "_get_pass", lambda self, prompt="": "short1")
    err = StringIO()

    with pytest.raises(CommandError, match="after 3 attempts"):
        call_command("changepassword", user.username, stdout=StringIO(), stderr=err)

    assert "at least 12 characters" in err.getvalue()
    user.refresh_from_db()
    assert not user.check_password("short1")


class _Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_createsuperuser_names_the_rule_and_asks_again_unless_told_to_bypass_it(monkeypatch):
    """`manage.py createsuperuser` (interactive) calls validate_password on what is typed, shows the
    rule and asks whether to bypass it: N asks for another password."""
    typed = iter(["short1", "short1", "harbour-lights-douala", "harbour-lights-douala"])
    asked = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(typed))
    monkeypatch.setattr(builtins, "input", lambda prompt="": asked.append(prompt) or "n")
    err = StringIO()

    call_command(
        "createsuperuser",
        username="amara.diallo",
        email="amara.diallo@example.com",
        interactive=True,
        stdin=_Terminal(),
        stdout=StringIO(),
        stderr=err,
    )

    assert "at least 12 characters" in err.getvalue()
    assert asked == ["Bypass password validation and create user anyway? [y/N]: "]
    assert User.objects.get(username="amara.diallo").check_password("harbour-lights-douala")


def test_createsuperuser_with_noinput_checks_no_rule(monkeypatch):
    """What docs/security.md warns of: `createsuperuser --noinput` takes DJANGO_SUPERUSER_PASSWORD
    as it is."""
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "short1")

    call_command(
        "createsuperuser",
        "--noinput",
        username="kofi.mensah",
        email="kofi.mensah@example.com",
        stdout=StringIO(),
    )

    assert User.objects.get(username="kofi.mensah").check_password("short1")
