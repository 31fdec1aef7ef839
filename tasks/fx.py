"""Exchange-rate jobs: the daily fetch of CAD/USD/XAF rates (billing/exchange_rates.py)."""

from __future__ import annotations

from billing.exchange_rates import update_exchange_rates as fetch_and_store_rates
from jobs.task_base import platform_task
from jobs.task_names import TaskName


@platform_task(name=TaskName.UPDATE_EXCHANGE_RATES, soft_time_limit=60, time_limit=90)
def update_exchange_rates(self) -> dict:
    """Fetch today's rates between CAD, USD and XAF, store them and refresh their cache.

    Idempotent by construction: one row per pair and day, a rerun updates the same rows."""
    rates = fetch_and_store_rates()
    as_of = max((r.as_of for r in rates), default=None)
    return {
        "stored": len(rates),
        "as_of": as_of.isoformat() if as_of else None,
        "rates": {f"{r.base}/{r.quote}": str(r.rate) for r in rates},
    }
