"""Production settings: every secret from the environment, HTTPS everywhere, `check --deploy` clean."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import LOGGING, env

REQUIRED = (
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "FLOWER_BASIC_AUTH",
    # Sealed arguments' keys: never the key derived from SECRET_KEY (config/settings/base.py).
    "SEALED_ARGUMENT_KEYS",
)
# Each integration's credentials, required unless its backend is chosen explicitly (the console
# class on a staging box, say): without them integrations/backends.py would fall back to the
# console backend, storing fake FX rates as real and marking WhatsApp messages sent.
INTEGRATION_REQUIRED = {
    "TWILIO_BACKEND": ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_WHATSAPP_FROM"),
    "STRIPE_BACKEND": ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"),
    "VEHICLE_HISTORY_BACKEND": ("VEHICLE_HISTORY_API_KEY", "VEHICLE_HISTORY_BASE_URL"),
    "FX_BACKEND": ("FX_BASE_URL",),
}
_missing = [name for name in REQUIRED if not env.str(name, default="")]
for _backend, _names in INTEGRATION_REQUIRED.items():
    if not env.str(_backend, default=""):
        _missing += [f"{name} (or {_backend})" for name in _names if not env.str(name, default="")]
if _missing:
    raise ImproperlyConfigured(
        "Missing required setting(s) for production: "
        + ", ".join(_missing)
        + ". Set them in the environment (see ops/platform.env.example)."
    )

SECRET_KEY = env("SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Health checks and metrics are scraped over plain HTTP on the private interface.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Static files (admin) are collected into STATIC_ROOT by `manage.py collectstatic` on deploy
# and served by the reverse proxy, not by Django.

# Logs: one JSON object per line for the log shipper, phone numbers masked
# (config/structured_logging.py). LOG_FORMAT=plain for a human at a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT

# Persistent database connections come from base: CONN_MAX_AGE (60 s by default) with
# CONN_HEALTH_CHECKS, so a connection PostgreSQL dropped is replaced before use, not failed
# on; workers reuse theirs across tasks too (CELERY_DB_REUSE_MAX).
