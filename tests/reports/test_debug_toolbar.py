"""django-debug-toolbar: pinned for development only, installed by the local settings (where it
shows on HTML pages), and absent from the production settings and requirements."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

from cryptography.fernet import Fernet

from tests.support.processes import ROOT

PROBE = (
    "import json, sys\n"
    "sys.path.insert(0, 'platform')\n"
    "import django; django.setup()\n"
    "from django.conf import settings\n"
    "from django.urls import NoReverseMatch, reverse\n"
    "try:\n"
    "    urls = bool(reverse('djdt:render_panel'))\n"
    "except NoReverseMatch:\n"
    "    urls = False\n"
    "page = ''\n"
    "if 'debug_toolbar' in settings.INSTALLED_APPS:\n"
    "    from django.test import Client\n"
    "    page = Client().get('/admin/login/').content.decode()\n"
    "print(json.dumps({'apps': settings.INSTALLED_APPS, 'middleware': settings.MIDDLEWARE,\n"
    "                  'urls': urls, 'toolbar_on_page': 'djDebug' in page,\n"
    "                  'collapsed': 'data-default-show=\"false\"' in page}))\n"
)


def _settings_of(module: str, **env: str) -> dict:
    environment = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": module,
        # Never opened: reading settings and rendering the login page touch no table.
        "DATABASE_URL": "sqlite:////nonexistent/debug-toolbar-probe.sqlite3",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_local_settings_install_the_toolbar_after_gzip_and_show_it_on_pages():
    local = _settings_of("config.settings.local")

    assert "debug_toolbar" in local["apps"]
    middleware = local["middleware"]
    toolbar = middleware.index("debug_toolbar.middleware.DebugToolbarMiddleware")
    assert toolbar == middleware.index("django.middleware.gzip.GZipMiddleware") + 1
    assert local["urls"] is True
    assert local["toolbar_on_page"] is True


def test_local_settings_show_the_toolbar_collapsed_to_its_handle():
    assert _settings_of("config.settings.local")["collapsed"] is True


def test_local_settings_with_debug_off_leave_it_out():
    local = _settings_of("config.settings.local", DEBUG="false")

    assert "debug_toolbar" not in local["apps"] and local["urls"] is False


def test_production_settings_never_install_it():
    production = _settings_of(
        "config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="ops.example.com",
        FLOWER_BASIC_AUTH="ops:" + secrets.token_urlsafe(12),
        SEALED_ARGUMENT_KEYS=Fernet.generate_key().decode(),
        # Integrations chosen explicitly: production requires their credentials otherwise.
        TWILIO_BACKEND="integrations.twilio_whatsapp.ConsoleWhatsApp",
        STRIPE_BACKEND="integrations.stripe_payments.ConsolePayments",
        VEHICLE_HISTORY_BACKEND="integrations.vehicle_history.ConsoleVehicleHistory",
        FX_BACKEND="integrations.fx.ConsoleFx",
    )

    assert "debug_toolbar" not in production["apps"]
    assert not any("debug_toolbar" in name for name in production["middleware"])
    assert production["urls"] is False


def test_it_is_pinned_for_development_only():
    def requirement_names(name: str) -> set[str]:
        lines = (ROOT / "requirements" / name).read_text().splitlines()
        return {line.split("==")[0].strip().lower() for line in lines if "==" in line}

    assert "django-debug-toolbar" in requirement_names("dev.txt")
    assert "django-debug-toolbar" not in requirement_names("base.txt")
    assert "django-debug-toolbar" not in requirement_names("prod.txt")
