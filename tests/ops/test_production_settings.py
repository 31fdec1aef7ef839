"""Production settings: `check --deploy` is clean with a realistic environment (and warns when staff
are asked for no second factor; `make run`'s settings ask for none), a missing
required setting (an integration's credentials too, unless its backend is chosen) stops start-up
with its name, logs are JSON, connections persist with health checks, and API responses are
compressed."""

import gzip
import json
import secrets
import subprocess
import sys

from cryptography.fernet import Fernet

from tests.support.processes import ROOT

INTEGRATION_CREDENTIALS = {
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
    "TWILIO_WHATSAPP_FROM": "+14165550100",
    "STRIPE_SECRET_KEY": "sk_live_" + secrets.token_urlsafe(24),
    "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_urlsafe(24),
    "VEHICLE_HISTORY_API_KEY": secrets.token_urlsafe(24),
    "VEHICLE_HISTORY_BASE_URL": "https://vehicle-history.example.com",
    "FX_BASE_URL": "https://fx.example.com",
}


def _production_env(**overrides: str | None) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "ops.example.com",
        "DATABASE_URL": "postgres://platform:pw@127.0.0.1:5432/platform",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "FLOWER_BASIC_AUTH": "ops:" + secrets.token_urlsafe(12),
        "SEALED_ARGUMENT_KEYS": Fernet.generate_key().decode(),
        **INTEGRATION_CREDENTIALS,
    }
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_reports_nothing_with_a_realistic_environment():
    argv = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"]
    done = _run(argv, _production_env())

    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


def test_missing_required_settings_stop_start_up_naming_each_one():
    done = _run([sys.executable, "manage.py", "check"], _production_env(SECRET_KEY=None, REDIS_URL=None))

    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert "SECRET_KEY" in done.stderr and "REDIS_URL" in done.stderr
    assert "DATABASE_URL" not in done.stderr.split("ImproperlyConfigured")[-1]


def test_sealed_argument_keys_are_required_in_production_never_derived():
    # Elsewhere a key derived from SECRET_KEY lets make run work (config/settings/base.py).
    done = _run([sys.executable, "manage.py", "check"], _production_env(SEALED_ARGUMENT_KEYS=None))

    assert done.returncode != 0
    assert "SEALED_ARGUMENT_KEYS" in done.stderr.split("ImproperlyConfigured")[-1]


def test_a_malformed_sealed_argument_key_stops_start_up_naming_the_setting_and_the_key():
    keys = f"{Fernet.generate_key().decode()},not-a-key"
    done = _run([sys.executable, "manage.py", "check"], _production_env(SEALED_ARGUMENT_KEYS=keys))

    assert done.returncode != 0
    message = done.stderr.split("ImproperlyConfigured")[-1]
    assert "SEALED_ARGUMENT_KEYS: key 2 of 2 is not a Fernet key" in message
    assert "not-a-key" not in message  # a key is a secret, even a broken one


def test_an_integration_without_credentials_or_a_chosen_backend_stops_start_up_naming_them():
    # Before, production fell back to the console backends: fake FX rates stored as real,
    # WhatsApp messages marked sent with fake ids.
    done = _run(
        [sys.executable, "manage.py", "check"],
        _production_env(TWILIO_AUTH_TOKEN=None, STRIPE_WEBHOOK_SECRET="", FX_BASE_URL=None),
    )

    assert done.returncode != 0
    message = done.stderr.split("ImproperlyConfigured")[-1]
    assert "TWILIO_AUTH_TOKEN (or TWILIO_BACKEND)" in message
    assert "STRIPE_WEBHOOK_SECRET (or STRIPE_BACKEND)" in message
    assert "FX_BASE_URL (or FX_BACKEND)" in message
    assert "TWILIO_ACCOUNT_SID" not in message and "VEHICLE_HISTORY" not in message


def test_an_explicitly_chosen_console_backend_needs_no_credentials():
    # A staging box: nothing leaves the machine, on purpose.
    done = _run(
        [sys.executable, "manage.py", "check"],
        _production_env(
            TWILIO_ACCOUNT_SID=None,
            TWILIO_AUTH_TOKEN=None,
            TWILIO_WHATSAPP_FROM=None,
            TWILIO_BACKEND="integrations.twilio_whatsapp.ConsoleWhatsApp",
        ),
    )

    assert done.returncode == 0, done.stderr


def test_production_logs_json_lines_with_phones_masked_and_keeps_checked_connections():
    code = (
        "import json, logging, sys\n"
        "sys.path.insert(0, 'platform')\n"
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "logging.getLogger('platform.test').warning('texted %s', '+14165550123')\n"
        "db = settings.DATABASES['default']\n"
        "print(json.dumps({'age': db['CONN_MAX_AGE'], 'checks': db['CONN_HEALTH_CHECKS']}))\n"
    )
    done = _run([sys.executable, "-c", code], _production_env())

    assert done.returncode == 0, done.stderr
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert line["message"] == "texted +1416*****23" and line["level"] == "WARNING"
    assert "+14165550123" not in done.stderr
    database = json.loads(done.stdout.strip().splitlines()[-1])
    assert database["age"] > 0 and database["checks"] is True


def test_api_responses_are_gzip_compressed(client):
    response = client.get("/api/v1/openapi.json", HTTP_ACCEPT_ENCODING="gzip")

    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert "openapi" in json.loads(gzip.decompress(response.content))


def test_production_asks_staff_for_a_second_factor_and_check_deploy_warns_if_told_not_to():
    code = "import sys; sys.path.insert(0, 'platform'); import django; django.setup()\n" + (
        "from django.conf import settings; print(settings.STAFF_TWO_FACTOR_REQUIRED)\n"
    )
    assert _run([sys.executable, "-c", code], _production_env()).stdout.strip().endswith("True")

    argv = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"]
    done = _run(argv, _production_env(STAFF_TWO_FACTOR_REQUIRED="false"))

    assert done.returncode != 0
    assert "staff_auth.W001" in done.stdout + done.stderr


def test_make_runs_settings_ask_staff_for_no_second_factor():
    code = "import sys; sys.path.insert(0, 'platform'); import django; django.setup()\n" + (
        "from django.conf import settings; print(settings.STAFF_TWO_FACTOR_REQUIRED)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.local"}

    done = _run([sys.executable, "-c", code], env)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("False")
