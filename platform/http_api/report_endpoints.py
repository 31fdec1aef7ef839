"""GET /api/v1/reports/dealers/<id> and /api/v1/reports/analytics: the dashboards' snapshots
(reports/market_dashboards.py), with an ETag and Cache-Control so that clients revalidate cheaply
(304 Not Modified on a matching If-None-Match, without a body).

The ETag is weak (W/"..."): it is a hash of the figures only, so a refresh that finds the same
figures keeps it, while `computed_at`, `age_seconds` and `stale` in the body move on."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.utils.http import http_date, parse_etags
from ninja import Field, Header, Path, Router, Schema, Status

from http_api.errors import ApiError
from http_api.schemas import ErrorResponse
from reports.market_dashboards import Dashboard, read_dealer_performance, read_market_analytics

MAX_ID = 2**63 - 1  # a bigint primary key; anything larger is a 400, not a database error
ERRORS = {401: ErrorResponse, 429: ErrorResponse}

router = Router(tags=["reports"])


# --- Schemas ------------------------------------------------------------------------------------

Money = Field(..., description="CAD, a decimal string with two places", examples=["33500.00"])


class DealerFigures(Schema):
    dealer_id: int
    dealer: str = Field(..., description="The dealer's display name")
    vehicles_listed: int = Field(..., description="Vehicles ever listed (not drafts)")
    vehicles_available: int = Field(..., description="Vehicles taking offers now")
    offers_received: int
    deals_won: int = Field(..., description="Deals paid, shipping or completed")
    deals_won_value_cad: str = Money
    avg_days_to_sale: float | None = Field(..., description="Days from listing to the deal, on average")
    invoices_overdue: int = Field(..., description="Unpaid invoices past their due date")
    currencies_without_rate: list[str] = Field(
        ..., description="Currencies with no exchange rate to CAD, left out of the CAD values"
    )


class MarketTotals(Schema):
    vehicles_listed: int
    vehicles_available: int
    offers_received: int
    deals_won: int
    deals_won_value_cad: str = Money
    avg_days_to_sale: float | None
    invoices_overdue: int
    currencies_without_rate: list[str]


class PaymentsCollected(Schema):
    count: int
    amount: str = Field(..., description="In the currency it was paid in, a decimal string")


class ShipmentPunctuality(Schema):
    on_time: int = Field(..., description="Arrived by their ETA")
    late: int = Field(..., description="Arrived after their ETA")
    overdue_in_transit: int = Field(..., description="Not arrived, ETA passed")


class WeekFigures(Schema):
    week: str = Field(..., description="The week's Monday (ISO date, in TIME_ZONE)")
    vehicles_listed: int
    offers_received: int
    deals_won: int
    deals_won_value_cad: str = Money
    avg_days_to_sale: float | None
    payments_collected: dict[str, str] = Field(..., description="Currency -> amount paid that week")


class MarketFigures(Schema):
    totals: MarketTotals
    payments_collected: dict[str, PaymentsCollected] = Field(..., description="Per currency, all time")
    shipments: ShipmentPunctuality
    by_week: list[WeekFigures] = Field(..., description="The last 12 weeks, oldest first")
    rates_to_cad: dict[str, str] = Field(..., description="CAD per unit of each currency, as used")


class SnapshotMeta(Schema):
    kind: str
    computed_at: datetime
    age_seconds: int
    stale: bool = Field(..., description="Older than twice its refresh period: refreshes have stopped")
    refresh_period_seconds: int


class DealerPerformance(SnapshotMeta):
    data: DealerFigures


class MarketAnalytics(SnapshotMeta):
    data: MarketFigures


# --- Endpoints ----------------------------------------------------------------------------------

IF_NONE_MATCH = Header(
    None,
    alias="If-None-Match",
    description="The ETag of the copy you hold: answered 304 without a body while it is current.",
)


@router.get(
    "/dealers/{dealer_id}",
    response={200: DealerPerformance, 304: None, 400: ErrorResponse, 404: ErrorResponse, **ERRORS},
    summary="A dealer's performance",
    operation_id="get_dealer_performance",
)
def dealer_performance(
    request: HttpRequest,
    response: HttpResponse,
    dealer_id: int = Path(..., ge=1, le=MAX_ID),
    if_none_match: str | None = IF_NONE_MATCH,
):
    """Vehicles listed, offers received, deals won and their value in CAD, average days to sale
    and overdue invoices, as last computed (every 30 minutes; computed now for a dealer new since
    the last refresh). 404 `not_found` for an id that is not a dealer's."""
    dashboard = read_dealer_performance(dealer_id=dealer_id)
    if dashboard is None:
        raise ApiError(404, "not_found", "No dealer has this id.", {"dealer_id": dealer_id})
    return _answer(dashboard, response, if_none_match)


@router.get(
    "/analytics",
    response={200: MarketAnalytics, 304: None, **ERRORS},
    summary="The marketplace's analytics",
    operation_id="get_market_analytics",
)
def market_analytics(request: HttpRequest, response: HttpResponse, if_none_match: str | None = IF_NONE_MATCH):
    """The dealer figures across the market, by week over the last 12 weeks, payments collected
    per currency and shipments on time against late, as last computed (every 15 minutes; computed
    now if it never was)."""
    return _answer(read_market_analytics(), response, if_none_match)


def _answer(dashboard: Dashboard, response: HttpResponse, if_none_match: str | None):
    etag = f'W/"{dashboard.etag}"'
    headers = {
        "ETag": etag,
        # Fresh until the next refresh is due; private: the answer is for API-key holders only.
        "Cache-Control": f"private, max-age={dashboard.fresh_for()}",
        "Last-Modified": http_date(dashboard.computed_at.timestamp()),
    }
    if if_none_match and _matches(if_none_match, dashboard.etag):
        not_modified = HttpResponse(status=304)
        for name, value in headers.items():
            not_modified[name] = value
        return not_modified
    for name, value in headers.items():
        response[name] = value
    return Status(
        200,
        {
            "kind": dashboard.kind,
            "computed_at": dashboard.computed_at,
            "age_seconds": int(dashboard.age().total_seconds()),
            "stale": dashboard.is_stale(),
            "refresh_period_seconds": int(dashboard.period.total_seconds()),
            "data": dashboard.payload,
        },
    )


def _matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): W/ is ignored."""
    tags = parse_etags(if_none_match)
    return "*" in tags or any(tag.removeprefix("W/") == f'"{etag}"' for tag in tags)
