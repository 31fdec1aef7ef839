"""Exchange rates from an HTTP rates API (the Frankfurter / exchangerate.host shape):

    GET {FX_BASE_URL}/latest?base=CAD&symbols=USD,XAF
    200 {"amount": 1.0, "base": "CAD", "date": "2025-06-02", "rates": {"USD": 0.7312, "XAF": 441.25}}

Rates are parsed as Decimal, never float. Storing and caching them is billing/exchange_rates.py's job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from integrations import ratelimit
from integrations.backends import backend_class, console_log
from integrations.errors import PermanentError, TransientError
from integrations.http import JsonApi, timeouts

logger = logging.getLogger(__name__)
PROVIDER = "fx"


@dataclass(frozen=True)
class RatesQuote:
    """1 `base` = rates[quote] units of `quote`, as published for `as_of`."""

    base: str
    as_of: date
    rates: dict[str, Decimal]
    source: str


class FxClient(Protocol):
    source: str

    def latest(self, *, base: str, symbols: Iterable[str]) -> RatesQuote: ...


def _currency(code: Any, *, field: str) -> str:
    value = str(code or "").strip().upper()
    if len(value) != 3 or not value.isalpha():
        raise PermanentError(
            f"{field} must be a 3-letter ISO 4217 code", provider=PROVIDER, code="invalid_currency"
        )
    return value


@dataclass(frozen=True)
class FxConfig:
    base_url: str
    timeout: tuple[float, float]

    @classmethod
    def from_settings(cls) -> FxConfig:
        return cls(base_url=settings.FX_BASE_URL.rstrip("/"), timeout=timeouts())


class HttpFx:
    """The real backend: one GET /latest per base currency."""

    def __init__(self, config: FxConfig) -> None:
        self.api = JsonApi(provider=PROVIDER, base_url=config.base_url, timeout=config.timeout)
        # The provider's host: what ExchangeRate.source records.
        self.source = urlsplit(config.base_url).netloc or config.base_url

    def latest(self, *, base: str, symbols: Iterable[str]) -> RatesQuote:
        base = _currency(base, field="base")
        wanted = sorted({_currency(s, field="symbols") for s in symbols} - {base})
        ratelimit.acquire(PROVIDER)
        body = self.api.get("/latest", params={"base": base, "symbols": ",".join(wanted)}, decimals=True)
        return _parse_quote(body, base=base, wanted=wanted, source=self.source)


def _parse_quote(body: Any, *, base: str, wanted: list[str], source: str) -> RatesQuote:
    # A malformed answer is the provider's problem of the moment, not ours: retry later.
    try:
        if str(body["base"]).upper() != base:
            raise ValueError("base differs")
        as_of = date.fromisoformat(str(body["date"]))
        rates = {code: Decimal(str(body["rates"][code])) for code in wanted}
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise TransientError(
            f"unexpected rates answer ({type(exc).__name__}: {exc})",
            provider=PROVIDER,
            code="invalid_response",
        ) from exc
    if any(rate <= 0 for rate in rates.values()):
        raise TransientError("non-positive rate in answer", provider=PROVIDER, code="invalid_response")
    return RatesQuote(base=base, as_of=as_of, rates=rates, source=source)


# Units per euro, roughly: XAF is pegged to the euro at 655.957.
_CONSOLE_PER_EUR = {
    "EUR": Decimal("1"),
    "CAD": Decimal("1.4890"),
    "USD": Decimal("1.0850"),
    "XAF": Decimal("655.957"),
    "GBP": Decimal("0.8450"),
}


class ConsoleFx:
    """Local runs without a rates API: plausible fixed rates for today."""

    source = "console"

    def __init__(self, config: FxConfig) -> None:
        self.config = config

    def latest(self, *, base: str, symbols: Iterable[str]) -> RatesQuote:
        base = _currency(base, field="base")
        wanted = sorted({_currency(s, field="symbols") for s in symbols} - {base})
        unknown = [code for code in [base, *wanted] if code not in _CONSOLE_PER_EUR]
        if unknown:
            raise PermanentError(
                f"symbols: unsupported currency {unknown[0]}", provider=PROVIDER, code="unsupported_currency"
            )
        rates = {
            code: (_CONSOLE_PER_EUR[code] / _CONSOLE_PER_EUR[base]).quantize(Decimal("0.000001"))
            for code in wanted
        }
        console_log(PROVIDER, "fetch latest rates", base=base, symbols=wanted)
        return RatesQuote(base=base, as_of=timezone.localdate(), rates=rates, source=self.source)


def get_fx_client() -> FxClient:
    """The configured backend (settings.FX_BACKEND), real when FX_BASE_URL is set."""
    config = FxConfig.from_settings()
    cls = backend_class(
        "FX_BACKEND",
        real="integrations.fx.HttpFx",
        console="integrations.fx.ConsoleFx",
        configured=bool(config.base_url),
    )
    return _client(cls, config)


@lru_cache(maxsize=8)
def _client(cls: type, config: FxConfig) -> FxClient:
    return cls(config)
