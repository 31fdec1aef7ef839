"""The trigger API's settings (declared, with their defaults, in config/settings/base.py)."""

from __future__ import annotations

from django.conf import settings


def rate_limit() -> str:
    """Requests per API key, shared by every web process: "600/m", "20/s", "5000/h"."""
    return settings.API_RATE_LIMIT


def max_body_bytes() -> int:
    """Largest request body POST /api/v1/jobs accepts (413 past it); never above Django's own cap."""
    ours = int(settings.API_MAX_BODY_BYTES)
    django_cap = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return min(ours, django_cap) if django_cap is not None else ours


def max_countdown_seconds() -> int:
    """Longest countdown a job may ask for (the worker holding it heartbeats it on Redis)."""
    return int(settings.JOB_MAX_COUNTDOWN_SECONDS)


def idempotency_ttl_seconds() -> int:
    """How long an Idempotency-Key keeps returning its first job (then it can be used afresh)."""
    return int(settings.API_IDEMPOTENCY_TTL_SECONDS)


def publish_timeout_seconds() -> float:
    """Socket timeout of one publish to the broker (a healthy one answers in well under 1 ms).
    With one retry, a hung broker costs about twice this; with the rate limiter's own Redis
    timeout (the cache's, 0.5 s) a request still gets its 503 well inside the contract's 2 s."""
    return float(settings.API_PUBLISH_TIMEOUT_SECONDS)
