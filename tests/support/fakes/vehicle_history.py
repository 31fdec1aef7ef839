"""A fake vehicle-history API: GET /v1/reports/{vin} with an X-API-Key header, counting calls per VIN."""

from __future__ import annotations

from collections import Counter

from integrations.vehicle_history import sample_report
from tests.support.fakes.server import FakeServer, Recorded, Reply

API_KEY = "vh_test_fake_0123456789"
UNKNOWN_VIN = "ZZZZZZZZZZZZZZZZZ"  # the fake has no history for it: 404


class FakeVehicleHistory(FakeServer):
    name = "vehicle_history"

    def __init__(self, *, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.served: Counter[str] = Counter()  # reports answered (paid calls) per VIN
        super().__init__()

    def setup_routes(self) -> None:
        self.route("GET", r"/v1/reports/(?P<vin>[^/]+)", self._report)

    def settings(self) -> dict[str, str]:
        return {
            "VEHICLE_HISTORY_API_KEY": self.api_key,
            "VEHICLE_HISTORY_BASE_URL": self.url,
            "VEHICLE_HISTORY_BACKEND": "",
        }

    def _report(self, request: Recorded, match) -> Reply:
        if request.header("X-API-Key") != self.api_key:
            return Reply(401, {"error": {"code": "unauthorized", "message": "Invalid API key"}})
        vin = match["vin"].upper()
        if vin == UNKNOWN_VIN:
            return Reply(404, {"error": {"code": "vin_not_found", "message": "No records for this VIN"}})
        self.served[vin] += 1
        return Reply(200, sample_report(vin))
