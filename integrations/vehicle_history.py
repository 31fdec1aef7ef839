"""Vehicle-history reports (a CarFax-like API, paid per call) by VIN.

    GET {VEHICLE_HISTORY_BASE_URL}/v1/reports/{vin}     X-API-Key: <VEHICLE_HISTORY_API_KEY>
    200 {"vin": ..., "report_id": ..., "generated_at": ..., "vehicle": {...}, "title": {...},
         "odometer": [...], "accidents": [...], "owners": n, "recalls": [...], "liens": [...]}

Every call of the real backend costs money: callers go through reports/vehicle_history.py
(cache, then database, then here), never straight to this client.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from identifiers import VIN_MESSAGE, is_vin, normalize_vin
from integrations import ratelimit
from integrations.backends import backend_class, console_log, fake_id
from integrations.errors import PermanentError
from integrations.http import JsonApi, timeouts

logger = logging.getLogger(__name__)
PROVIDER = "vehicle_history"


def _checked_vin(vin: Any) -> str:
    """The VIN as the provider's URL path takes it. Callers pass valid VINs (the task's argument
    type checks them); this guard only keeps a malformed one from ever becoming a paid request."""
    value = normalize_vin(vin) if isinstance(vin, str) else ""
    if not is_vin(value):
        raise PermanentError(f"vin {VIN_MESSAGE}", provider=PROVIDER, code="invalid_vin")
    return value


@dataclass(frozen=True)
class FetchedReport:
    vin: str
    payload: dict[str, Any]
    provider: str
    paid_call: bool  # did fetching it cost money


class VehicleHistoryClient(Protocol):
    provider: str

    def fetch_report(self, vin: str) -> FetchedReport: ...


@dataclass(frozen=True)
class VehicleHistoryConfig:
    api_key: str
    base_url: str
    timeout: tuple[float, float]

    @classmethod
    def from_settings(cls) -> VehicleHistoryConfig:
        return cls(
            api_key=settings.VEHICLE_HISTORY_API_KEY,
            base_url=settings.VEHICLE_HISTORY_BASE_URL.rstrip("/"),
            timeout=timeouts(),
        )


class HttpVehicleHistory:
    """The real backend: one paid GET per VIN, limited by RATE_LIMITS['vehicle_history']."""

    provider = "vehicle_history_api"

    def __init__(self, config: VehicleHistoryConfig) -> None:
        if not config.base_url:
            raise ImproperlyConfigured("VEHICLE_HISTORY_BASE_URL must be set with VEHICLE_HISTORY_API_KEY")
        self.api = JsonApi(
            provider=PROVIDER,
            base_url=config.base_url,
            headers={"X-API-Key": config.api_key},
            timeout=config.timeout,
        )

    def fetch_report(self, vin: str) -> FetchedReport:
        vin = _checked_vin(vin)
        ratelimit.acquire(PROVIDER)
        payload = self.api.get(f"/v1/reports/{vin}")
        if not isinstance(payload, dict) or str(payload.get("vin", "")).upper() != vin:
            raise PermanentError(
                "report does not match the VIN asked for", provider=PROVIDER, code="vin_mismatch"
            )
        logger.info("vehicle history report for %s fetched (paid call)", vin)
        return FetchedReport(vin=vin, payload=payload, provider=self.provider, paid_call=True)


class ConsoleVehicleHistory:
    """Local runs without an account: a realistic report derived from the VIN, at no cost."""

    provider = "console"

    def __init__(self, config: VehicleHistoryConfig) -> None:
        self.config = config

    def fetch_report(self, vin: str) -> FetchedReport:
        vin = _checked_vin(vin)
        console_log(PROVIDER, "fetch a paid report", vin=vin)
        return FetchedReport(vin=vin, payload=sample_report(vin), provider=self.provider, paid_call=False)


def sample_report(vin: str) -> dict[str, Any]:
    """A plausible report, stable for a VIN (console backend and the test fake share it)."""
    seed = int(hashlib.sha256(vin.encode()).hexdigest(), 16)
    makes = [
        ("Toyota", "Corolla"),
        ("Honda", "Civic"),
        ("Ford", "F-150"),
        ("Hyundai", "Tucson"),
        ("Chevrolet", "Silverado"),
        ("Nissan", "Rogue"),
    ]
    make, model = makes[seed % len(makes)]
    year = 2012 + seed % 12
    km = 20_000 + seed % 180_000
    accidents = (
        [{"date": f"{year + 2}-05-14", "severity": "minor", "airbags_deployed": False}]
        if seed % 4 == 0
        else []
    )
    return {
        "vin": vin,
        "report_id": fake_id("vhr_", 20),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "vehicle": {"year": year, "make": make, "model": model, "country_of_assembly": "CA"},
        "title": {"brand": "clean", "provinces": ["ON", "QC"][: 1 + seed % 2]},
        "odometer": [
            {"date": f"{year + 1}-03-02", "km": km // 4, "source": "service"},
            {"date": f"{year + 4}-09-19", "km": km, "source": "inspection"},
        ],
        "accidents": accidents,
        "owners": 1 + seed % 3,
        "recalls": [{"campaign": f"{year % 100:02d}V-{seed % 900 + 100}", "status": "completed"}]
        if seed % 3 == 0
        else [],
        "liens": [],
        "stolen": False,
    }


def get_vehicle_history_client() -> VehicleHistoryClient:
    """The configured backend (settings.VEHICLE_HISTORY_BACKEND), real when an API key is set."""
    config = VehicleHistoryConfig.from_settings()
    cls = backend_class(
        "VEHICLE_HISTORY_BACKEND",
        real="integrations.vehicle_history.HttpVehicleHistory",
        console="integrations.vehicle_history.ConsoleVehicleHistory",
        configured=bool(config.api_key),
    )
    return _client(cls, config)


@lru_cache(maxsize=8)
def _client(cls: type, config: VehicleHistoryConfig) -> VehicleHistoryClient:
    return cls(config)
