"""Exchange rates between the marketplace's currencies (CAD, USD, XAF): fetched from the rates
provider, stored once per pair and day, cached 12 h, and read cache first, then database.

    update_exchange_rates()                      # tasks.fx.update_exchange_rates calls this
    get_rate(base="CAD", quote="XAF")            # Decimal('441.25')
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from urllib.parse import urlsplit

from django.db import transaction

from billing.models import ExchangeRate
from billing.services import record_exchange_rate
from integrations.cache import cache_get, cache_set
from integrations.fx import get_fx_client
from marketplace.money import Currency

CACHE_KIND = "exchange_rates"
RATE_PLACES = Decimal("0.0000000001")  # ExchangeRate.rate keeps 10 decimal places


@dataclass(frozen=True)
class Rate:
    base: str
    quote: str
    rate: Decimal
    as_of: date


def update_exchange_rates(*, currencies: tuple[str, ...] | None = None) -> list[Rate]:
    """Fetch today's rates between every pair of `currencies` (default: all the marketplace's),
    store them (a rerun on the same day updates the same rows) and refresh their cache entries."""
    codes = tuple(currencies or Currency.values)
    client = get_fx_client()
    source = _source_name(client.source)
    # Fetch everything first: a provider failure then changes nothing, and the retry starts clean.
    quotes = [client.latest(base=base, symbols=[c for c in codes if c != base]) for base in codes]
    stored: list[Rate] = []
    with transaction.atomic():
        for quote in quotes:
            for code, value in sorted(quote.rates.items()):
                row = record_exchange_rate(
                    base=quote.base,
                    quote=code,
                    rate=value.quantize(RATE_PLACES),
                    as_of=quote.as_of,
                    source=source,
                )
                stored.append(Rate(base=row.base, quote=row.quote, rate=Decimal(row.rate), as_of=row.as_of))
        # Writing the cache is its invalidation: the new values replace the old ones, once the
        # rows are committed (a rollback leaves the cache and the database agreeing).
        transaction.on_commit(lambda: _cache_all(stored))
    return stored


def get_rate(*, base: str, quote: str) -> Decimal | None:
    """Units of `quote` for one unit of `base`, from the cache, else the latest stored rate;
    None when no rate is known for the pair."""
    base, quote = base.upper(), quote.upper()
    if base == quote:
        return Decimal(1)
    hit, cached = cache_get(CACHE_KIND, _key(base, quote))
    if hit and cached is not None:
        return Decimal(cached["rate"])
    row = ExchangeRate.objects.filter(base=base, quote=quote).order_by("-as_of").first()
    if row is None:
        return None
    rate = Rate(base=row.base, quote=row.quote, rate=Decimal(row.rate), as_of=row.as_of)
    _cache(rate)
    return rate.rate


def convert(*, amount: Decimal, base: str, quote: str) -> Decimal | None:
    """`amount` of `base` in `quote` at the current rate (unrounded), None without a rate."""
    rate = get_rate(base=base, quote=quote)
    return None if rate is None else Decimal(amount) * rate


def _key(base: str, quote: str) -> str:
    return f"{base}:{quote}"


def _cache(rate: Rate) -> None:
    cache_set(CACHE_KIND, _key(rate.base, rate.quote), {"rate": str(rate.rate), "as_of": rate.as_of})


def _cache_all(rates: list[Rate]) -> None:
    for rate in rates:
        _cache(rate)


def _source_name(source: str) -> str:
    # ExchangeRate.source holds 50 characters: the provider's host name, not its whole URL.
    return (urlsplit(source).hostname or source)[:50]
