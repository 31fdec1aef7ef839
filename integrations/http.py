"""The shared HTTP plumbing of our own JSON clients: one session with explicit timeouts and no
transport retries, and the one mapping from HTTP outcomes to the platform's error types."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from integrations.errors import IntegrationError, PermanentError, TransientError

# What waiting can heal: a provider overloaded (429), failing (5xx), or a request that
# raced another one (409 on lock timeouts). Everything else in 4xx is our request's fault.
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})


def timeouts() -> tuple[float, float]:
    """(connect, read) seconds for every outside call, from settings."""
    return (float(settings.INTEGRATION_CONNECT_TIMEOUT), float(settings.INTEGRATION_READ_TIMEOUT))


def new_session() -> requests.Session:
    """A pooled session whose adapters never retry (the task base is the one place that does)."""
    session = requests.Session()
    for scheme in ("http://", "https://"):
        session.mount(scheme, HTTPAdapter(max_retries=0, pool_maxsize=8))
    return session


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for_status(
    *,
    provider: str,
    status: int,
    code: str | int | None,
    message: str,
    headers: Mapping[str, str] | None = None,
    permanent: type[PermanentError] = PermanentError,
) -> IntegrationError:
    """The typed error for an HTTP failure status: transient for 5xx and 429-like, else permanent."""
    if status >= 500 or status in TRANSIENT_STATUSES:
        retry_after = parse_retry_after((headers or {}).get("Retry-After"))
        return TransientError(message, provider=provider, code=code or status, retry_after=retry_after)
    return permanent(message, provider=provider, code=code or status)


@contextmanager
def transport_errors(provider: str) -> Iterator[None]:
    """Map requests' transport failures (timeouts, refused, reset) to TransientError."""
    try:
        yield
    except requests.Timeout as exc:
        raise TransientError(f"timed out: {type(exc).__name__}", provider=provider, code="timeout") from exc
    except requests.ConnectionError as exc:
        raise TransientError("connection failed", provider=provider, code="connection_error") from exc
    except requests.RequestException as exc:
        # Invalid URL, too many redirects...: a configuration error, not something time heals.
        raise PermanentError(
            f"request failed: {type(exc).__name__}", provider=provider, code="request_error"
        ) from exc


class JsonApi:
    """A tiny JSON-over-HTTPS client: base URL, default headers, explicit timeouts, typed errors.

    The error body is expected as {"error": {"code": ..., "message": ...}} or {"code", "message"}."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout or timeouts()
        self.session = new_session()
        self.session.headers.update({"Accept": "application/json", **(headers or {})})

    def get(self, path: str, *, params: Mapping[str, Any] | None = None, decimals: bool = False) -> Any:
        """GET a JSON document; `decimals` parses its numbers with a fraction as Decimal (prices, rates)."""
        with transport_errors(self.provider):
            response = self.session.get(
                f"{self.base_url}{path}", params=params, timeout=self.timeout, allow_redirects=False
            )
            if response.status_code >= 300:
                raise self._error(response)
            try:
                return response.json(parse_float=Decimal) if decimals else response.json()
            except ValueError as exc:
                raise TransientError(
                    "response was not JSON", provider=self.provider, code="invalid_response"
                ) from exc

    def _error(self, response: requests.Response) -> IntegrationError:
        code: str | int | None = None
        message = response.reason or f"HTTP {response.status_code}"
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            detail = body.get("error") if isinstance(body.get("error"), dict) else body
            code = detail.get("code", code)
            message = str(detail.get("message") or message)
        if response.status_code in (301, 302, 303, 307, 308):
            code = code or "redirect"
        return error_for_status(
            provider=self.provider,
            status=response.status_code,
            code=code,
            message=message,
            headers=response.headers,
        )
