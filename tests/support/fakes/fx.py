"""A fake exchange-rates API: GET /latest?base=CAD&symbols=USD,XAF (the Frankfurter shape)."""

from __future__ import annotations

from datetime import date

from tests.support.fakes.server import FakeServer, Recorded, Reply

# Units per 1 CAD; others are derived through CAD.
DEFAULT_PER_CAD = {"CAD": "1", "USD": "0.7312", "XAF": "441.25", "EUR": "0.6727"}


class FakeFx(FakeServer):
    name = "fx"

    def __init__(self) -> None:
        self.per_cad = dict(DEFAULT_PER_CAD)
        self.as_of = date(2025, 6, 2)
        super().__init__()

    def setup_routes(self) -> None:
        self.route("GET", r"/latest", self._latest)

    def settings(self) -> dict[str, str]:
        return {"FX_BASE_URL": self.url, "FX_BACKEND": ""}

    def _latest(self, request: Recorded, match) -> Reply:
        base = (request.query.get("base") or ["EUR"])[0].upper()
        symbols = [s for s in ",".join(request.query.get("symbols") or []).upper().split(",") if s]
        unknown = [c for c in [base, *symbols] if c not in self.per_cad]
        if unknown:
            return Reply(404, {"error": {"code": "unknown_currency", "message": f"not found: {unknown[0]}"}})
        per_base = float(self.per_cad[base])
        # Numbers, as the real APIs send them; the client reads them as Decimal.
        rates = {s: round(float(self.per_cad[s]) / per_base, 6) for s in symbols if s != base}
        return Reply(200, {"amount": 1.0, "base": base, "date": self.as_of.isoformat(), "rates": rates})
