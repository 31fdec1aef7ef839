"""Puts every error answered under /api/, /webhooks/ and /healthz into the contract's shape.

Views there answer their own errors in the shape (http_api/errors.py); this is the net for
what they do not write themselves: django-ninja's plain-text 405, the empty 405 of
@require_POST/@require_GET, Django's HTML 404/500 pages. An exception escaping a view is left to
Django (logged by django.request with its traceback); its HTML 500 is reshaped here, so the
client gets the shape and never the traceback, even with DEBUG on.

A body over DATA_UPLOAD_MAX_MEMORY_SIZE is answered 413 `payload_too_large` here, before any view
or middleware reads it: Django itself would turn its RequestDataTooBig into a 400 wherever the
body is first read (a webhook's view, CSRF reading a form). Bodies sent chunked, without a
Content-Length, get their length from config/chunked_bodies.py first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from http_api import conf
from http_api.errors import STATUS_CODES, error_response, too_large

PREFIXES = ("/api/", "/webhooks/", "/healthz")
# Headers of the original answer the client still needs (what to retry with, when, how).
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def error_code(status: int) -> str:
    """snake_case code for an HTTP status: ours where the API names it, else the status phrase."""
    if status == 500:
        return "internal_error"
    if status in STATUS_CODES:
        return STATUS_CODES[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "error"
    return re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")


def _message(request: HttpRequest, status: int, allow: str | None) -> str:
    if status == 405:
        return f"{request.method} is not allowed here; allowed: {allow or 'none'}."
    if status >= 500:
        return "Something went wrong on our side; it was logged."
    try:
        return f"{HTTPStatus(status).phrase}."
    except ValueError:
        return "The request failed."


class JsonErrorMiddleware:
    """Rewrites a non-JSON 4xx/5xx answer on the API's paths into {"error": {...}}."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(PREFIXES) and _over_djangos_limit(request):
            return too_large(conf.max_body_bytes() if request.path.startswith("/api/") else _django_cap())
        response = self.get_response(request)
        if not request.path.startswith(PREFIXES) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        allow = response.get("Allow")
        details = {"allowed": [m.strip() for m in allow.split(",") if m.strip()]} if allow else None
        shaped = error_response(
            response.status_code,
            error_code(response.status_code),
            _message(request, response.status_code, allow),
            details,
        )
        for name in KEPT_HEADERS:
            if name in response:
                shaped[name] = response[name]
        return shaped


def _django_cap() -> int | None:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def _over_djangos_limit(request: HttpRequest) -> bool:
    cap = _django_cap()
    if cap is None:
        return False
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > cap
    except ValueError:
        return False
