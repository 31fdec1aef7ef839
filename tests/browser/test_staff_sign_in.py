"""Staff sign-in in a real browser (docs/security.md): a login without a code from the
authenticator is refused by a web process on production settings and accepted with one; ten wrong
passwords lock the account, whose right password (and code) is then refused until staff unlock it
from admin; the audit log has the lockout and the unlock."""

from __future__ import annotations

import secrets

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from playwright.sync_api import Page, expect

from audit.models import AuditLog
from staff_auth.throttling import LOCKOUT_ACTOR
from tests.browser.conftest import DEFAULT_TIMEOUT_MS, StaffUser, make_staff_user
from tests.browser.pages import fill_login_form, log_in, success_message
from tests.support.processes import start_web
from tests.support.two_factor import current_code

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("broker", ["redis"], indirect=True),
]

# Behind one reverse proxy (TRUSTED_PROXY_COUNT=1), each browser below comes from an address of its
# own, as the proxy's X-Forwarded-For says: the guesser's, the staff member's, the lead's.
GUESSER, STAFF, LEAD = "203.0.113.7", "198.51.100.20", "198.51.100.30"
CONSOLE_BACKENDS = {
    "TWILIO_BACKEND": "integrations.twilio_whatsapp.ConsoleWhatsApp",
    "STRIPE_BACKEND": "integrations.stripe_payments.ConsolePayments",
    "VEHICLE_HISTORY_BACKEND": "integrations.vehicle_history.ConsoleVehicleHistory",
    "FX_BACKEND": "integrations.fx.ConsoleFx",
}


@pytest.fixture
def platform_settings() -> dict[str, str]:
    return {"TRUSTED_PROXY_COUNT": "1"}


@pytest.fixture
def production_web(database_url, broker):
    """`manage.py runserver` on config.settings.production (plain HTTP on loopback: no TLS redirect)."""
    env = broker.env(
        database_url=database_url,
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        FLOWER_BASIC_AUTH="ops:" + secrets.token_urlsafe(12),
        SEALED_ARGUMENT_KEYS=Fernet.generate_key().decode(),
        SECURE_SSL_REDIRECT="false",
        **CONSOLE_BACKENDS,
    )
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.pop("STAFF_TWO_FACTOR_REQUIRED", None)  # production's own default
    web = start_web(env, name="production-web")
    yield web
    web.stop()


@pytest.fixture
def page_from(new_context):
    """A browser of its own (cookies and all) whose requests the proxy says come from `address`."""

    def open_page(address: str) -> Page:
        context = new_context(extra_http_headers={"X-Forwarded-For": address})
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        return context.new_page()

    return open_page


def test_production_refuses_a_staff_login_without_a_code_and_accepts_one_with_it(
    page: Page, production_web, staff_user: StaffUser, django_user_model
):
    # The test settings hash with MD5 (speed), which production does not read: hashed as production does.
    django_user_model.objects.filter(username=staff_user.username).update(
        password=PBKDF2PasswordHasher().encode(staff_user.password, PBKDF2PasswordHasher().salt())
    )
    page.goto(f"{production_web.url}/admin/login/?next=/admin/")

    fill_login_form(page, staff_user.username, staff_user.password)  # no code

    expect(page.locator(".errornote")).to_contain_text("correct username, password and authentication code")
    expect(page).to_have_url(f"{production_web.url}/admin/login/?next=/admin/")
    page.goto(f"{production_web.url}/admin/ops/")
    expect(page).to_have_url(f"{production_web.url}/admin/login/?next=/admin/ops/")

    fill_login_form(page, staff_user.username, staff_user.password, current_code(staff_user.totp_key))

    expect(page).to_have_url(f"{production_web.url}/admin/ops/")
    expect(page.locator("#ops-queues")).to_be_visible()


def test_ten_wrong_passwords_lock_the_account_until_staff_unlock_it_and_both_are_audited(
    page_from, live_platform, staff_user: StaffUser, django_user_model
):
    login = live_platform.url("/admin/login/?next=/admin/")
    guesser = page_from(GUESSER)
    guesser.goto(login)
    for guess in range(1, 10):
        fill_login_form(guesser, staff_user.username, f"guess number {guess}")
        expect(guesser.locator(".errornote")).to_contain_text("correct username, password")

    fill_login_form(guesser, staff_user.username, "guess number 10")

    expect(guesser.locator("#locked-out")).to_contain_text("locked after 10 failed logins")

    # The staff member, from another address, with the right password and code: refused.
    staff = page_from(STAFF)
    staff.goto(login)
    fill_login_form(staff, staff_user.username, staff_user.password, current_code(staff_user.totp_key))
    expect(staff.locator("#locked-out")).to_be_visible()
    staff.goto(live_platform.url("/admin/"))
    expect(staff).to_have_url(live_platform.url("/admin/login/?next=/admin/"))

    # Another staff member unlocks the username from admin.
    lead_user = make_staff_user(django_user_model, "ops-lead", "a different long passphrase")
    lead = page_from(LEAD)
    log_in(lead, live_platform, lead_user)
    lead.goto(live_platform.url(f"/admin/axes/accessattempt/?q={staff_user.username}"))
    lead.locator("#result_list tbody input.action-select").first.check()
    lead.locator("select[name=action]").select_option("unlock_usernames")
    lead.get_by_role("button", name="Go").click()
    expect(success_message(lead)).to_contain_text(f"Unlocked: {staff_user.username}")

    log_in(staff, live_platform, staff_user)

    locked = AuditLog.objects.get(action="login_locked_out")
    assert locked.actor == LOCKOUT_ACTOR
    assert locked.changes == {
        "username": [None, staff_user.username],
        "ip_address": [None, GUESSER],
        "failures": [None, 10],
    }
    unlocked = AuditLog.objects.get(action="login_unlocked")
    assert unlocked.actor == lead_user.username
    assert unlocked.changes == {"username": [staff_user.username, staff_user.username], "failures": [11, 0]}
    # Both on the audit log's admin page, as staff read them.
    lead.goto(live_platform.url("/admin/audit/auditlog/"))
    expect(lead.locator("#result_list")).to_contain_text("login_locked_out")
    expect(lead.locator("#result_list")).to_contain_text("login_unlocked")
