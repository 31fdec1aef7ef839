"""Each dashboard figure, on a small market built by hand and checked by hand.

The market, "now" being Wednesday 2026-11-18 12:00 in Toronto (weeks start on Mondays):

dealer A (Maple)
  vehicles  v1 available (listed 11-17), v2 reserved (11-03), v3 sold (11-07), v4 sold (10-21),
            v5 draft (not listed)                          -> listed 4, available 1
  offers    two on v1 (11-17), one on v3 (11-10)           -> 3
  deals     d1 v3 paid      20,000 CAD, created 11-17 (10 days after v3 was listed)
            d2 v4 completed 10,000 USD, created 11-10 (20 days after v4)
            d3 v2 negotiating 30,000 CAD (not a sale)
            -> won 2, 20,000 + 10,000 x 1.35 (latest USD->CAD) = 33,500.00 CAD, avg 15.0 days
  invoices  on d1 paid (20,000 CAD, 11-17), on d2 paid (10,000 USD, 11-12),
            on d3: open due 11-17 (overdue), failed due 11-08 (overdue), open due 11-19 (not yet),
            void due 11-01 (cancelled, not owed)           -> overdue 2
dealer B (Northern)
  vehicles  w1 sold (11-11), w2 available (06-01, outside the 12 weeks) -> listed 2, available 1
  offers    one on w2 (11-18)                              -> 1
  deals     e1 w1 shipping 880,000 XAF, created 11-16 (5 days after w1)
            -> won 1, 880,000 / 440 (only CAD->XAF is known: inverted) = 2,000.00 CAD, avg 5.0
  invoices  on e1 paid (880,000 XAF, 11-18)                -> overdue 0
dealer C: nothing at all.

Market: listed 6, available 2, offers 4, won 3 worth 35,500.00 CAD, avg (10+20+5)/3 = 11.7 days,
overdue invoices 2; payments CAD 1 x 20,000.00, USD 1 x 10,000.00, XAF 1 x 880,000.00.
Shipments: s1 arrived a day before its ETA (on time), s2 two days after (late), s3 at port a day
late (late), s4 in transit with its ETA passed (overdue in transit), s5 in transit with its ETA
ahead and s6 booked without ETA (neither).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing.models import ExchangeRate, Invoice
from logistics.models import Shipment
from marketplace.models import Deal, Offer, Vehicle
from reports.market_dashboards import (
    compute_dealer_performance,
    compute_market_analytics,
    latest_rates_to_cad,
)
from tests import factories as f

pytestmark = pytest.mark.django_db

TORONTO = ZoneInfo("America/Toronto")
NOW = datetime(2026, 11, 18, 12, 0, tzinfo=TORONTO)
TODAY = date(2026, 11, 18)


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=TORONTO)


def vehicle(dealer, status, listed_at):
    v = f.make_vehicle(dealer=dealer, status=status)
    Vehicle.objects.filter(pk=v.pk).update(created_at=listed_at)
    return v


def offer(v, made_at):
    o = f.make_offer(vehicle=v)
    Offer.objects.filter(pk=o.pk).update(created_at=made_at)


def deal(v, status, price, currency, created_at):
    d = f.make_deal(vehicle=v, broker=None, status=status, agreed_price=Decimal(price), currency=currency)
    Deal.objects.filter(pk=d.pk).update(created_at=created_at)
    return d


def invoice(d, status, amount, currency, due, paid_at=None):
    return f.make_invoice(
        deal=d, status=status, amount=Decimal(amount), currency=currency, due_date=due, paid_at=paid_at
    )


@pytest.fixture
def market():
    f.make_exchange_rate(base="USD", quote="CAD", rate=Decimal("1.30"), as_of=date(2026, 11, 10))
    f.make_exchange_rate(base="USD", quote="CAD", rate=Decimal("1.35"), as_of=date(2026, 11, 17))
    f.make_exchange_rate(base="CAD", quote="USD", rate=Decimal("0.70"), as_of=date(2026, 11, 17))
    f.make_exchange_rate(base="CAD", quote="XAF", rate=Decimal("440"), as_of=date(2026, 11, 17))

    a, b, c = f.make_dealer(display_name="Maple"), f.make_dealer(display_name="Northern"), f.make_dealer()
    S = Vehicle.Status
    v1 = vehicle(a, S.AVAILABLE, at(11, 17))
    v2 = vehicle(a, S.RESERVED, at(11, 3))
    v3 = vehicle(a, S.SOLD, at(11, 7))
    v4 = vehicle(a, S.SOLD, at(10, 21))
    vehicle(a, S.DRAFT, at(11, 17))
    w1 = vehicle(b, S.SOLD, at(11, 11, 9))
    w2 = vehicle(b, S.AVAILABLE, at(6, 1))

    offer(v1, at(11, 17))
    offer(v1, at(11, 17))
    offer(v3, at(11, 10))
    offer(w2, at(11, 18, 8))

    D, Inv = Deal.Status, Invoice.Status
    d1 = deal(v3, D.PAID, "20000", "CAD", at(11, 17))
    d2 = deal(v4, D.COMPLETED, "10000", "USD", at(11, 10))
    d3 = deal(v2, D.NEGOTIATING, "30000", "CAD", at(11, 1))
    e1 = deal(w1, D.SHIPPING, "880000", "XAF", at(11, 16, 9))

    invoice(d1, Inv.PAID, "20000", "CAD", date(2026, 11, 20), paid_at=at(11, 17, 12))
    invoice(d2, Inv.PAID, "10000", "USD", date(2026, 11, 15), paid_at=at(11, 12))
    invoice(d3, Inv.OPEN, "1000", "CAD", date(2026, 11, 17))
    invoice(d3, Inv.FAILED, "1000", "CAD", date(2026, 11, 8))
    invoice(d3, Inv.OPEN, "1000", "CAD", date(2026, 11, 19))
    invoice(d3, Inv.VOID, "1000", "CAD", date(2026, 11, 1))
    invoice(e1, Inv.PAID, "880000", "XAF", date(2026, 11, 30), paid_at=at(11, 18, 9))

    eta = at(11, 10)
    SS = Shipment.Status
    f.make_shipment(deal=d2, status=SS.DELIVERED, eta=eta, arrived_at=eta - timedelta(days=1))
    f.make_shipment(deal=d2, status=SS.DELIVERED, eta=eta, arrived_at=eta + timedelta(days=2))
    f.make_shipment(deal=e1, status=SS.AT_PORT, eta=eta, arrived_at=eta + timedelta(days=1))
    f.make_shipment(deal=e1, status=SS.IN_TRANSIT, eta=NOW - timedelta(hours=1))
    f.make_shipment(deal=e1, status=SS.IN_TRANSIT, eta=NOW + timedelta(days=3))
    f.make_shipment(deal=e1, status=SS.BOOKED, eta=None)
    return a, b, c


def test_latest_rates_to_cad_use_the_newest_row_and_invert_when_only_cad_to_x_is_known(market):
    rates = latest_rates_to_cad()

    assert rates["CAD"] == 1
    assert rates["USD"] == Decimal("1.35")  # not 1.30 (older), not 1 / 0.70 (direct row wins)
    assert rates["XAF"] == Decimal(1) / Decimal(440)


def test_dealer_performance_per_dealer(market):
    a, b, c = market

    performance = compute_dealer_performance(today=TODAY)

    assert performance[a.pk] == {
        "dealer_id": a.pk,
        "dealer": "Maple",
        "vehicles_listed": 4,
        "vehicles_available": 1,
        "offers_received": 3,
        "deals_won": 2,
        "deals_won_value_cad": "33500.00",
        "avg_days_to_sale": 15.0,
        "invoices_overdue": 2,
        "currencies_without_rate": [],
    }
    assert performance[b.pk] == {
        "dealer_id": b.pk,
        "dealer": "Northern",
        "vehicles_listed": 2,
        "vehicles_available": 1,
        "offers_received": 1,
        "deals_won": 1,
        "deals_won_value_cad": "2000.00",
        "avg_days_to_sale": 5.0,
        "invoices_overdue": 0,
        "currencies_without_rate": [],
    }
    assert performance[c.pk] | {"dealer": None} == {
        "dealer_id": c.pk,
        "dealer": None,
        "vehicles_listed": 0,
        "vehicles_available": 0,
        "offers_received": 0,
        "deals_won": 0,
        "deals_won_value_cad": "0.00",
        "avg_days_to_sale": None,
        "invoices_overdue": 0,
        "currencies_without_rate": [],
    }
    # Only dealers: buyers and brokers made by the factories have no entry.
    assert set(performance) == {a.pk, b.pk, c.pk}


def test_dealer_performance_for_some_dealers_only(market):
    a, b, _ = market

    assert set(compute_dealer_performance(dealer_ids=[b.pk], today=TODAY)) == {b.pk}


def test_a_currency_without_any_rate_is_named_and_left_out_of_the_cad_value(market):
    _, b, _ = market

    ExchangeRate.objects.filter(quote="XAF").delete()

    performance = compute_dealer_performance(dealer_ids=[b.pk], today=TODAY)[b.pk]

    assert performance["deals_won_value_cad"] == "0.00"
    assert performance["currencies_without_rate"] == ["XAF"]


def test_market_totals(market):
    analytics = compute_market_analytics(now=NOW)

    assert analytics["totals"] == {
        "vehicles_listed": 6,
        "vehicles_available": 2,
        "offers_received": 4,
        "deals_won": 3,
        "deals_won_value_cad": "35500.00",
        "avg_days_to_sale": 11.7,
        "invoices_overdue": 2,
        "currencies_without_rate": [],
    }


def test_payments_collected_per_currency(market):
    analytics = compute_market_analytics(now=NOW)

    assert analytics["payments_collected"] == {
        "CAD": {"count": 1, "amount": "20000.00"},
        "USD": {"count": 1, "amount": "10000.00"},
        "XAF": {"count": 1, "amount": "880000.00"},
    }


def test_shipments_on_time_against_late(market):
    analytics = compute_market_analytics(now=NOW)

    assert analytics["shipments"] == {"on_time": 1, "late": 2, "overdue_in_transit": 1}


def test_market_by_week(market):
    weeks = compute_market_analytics(now=NOW)["by_week"]

    # Twelve Mondays, oldest first, the current week last.
    assert [w["week"] for w in weeks][-4:] == ["2026-10-26", "2026-11-02", "2026-11-09", "2026-11-16"]
    assert len(weeks) == 12 and weeks[0]["week"] == "2026-08-31"
    by_week = {w["week"]: w for w in weeks}
    assert by_week["2026-11-16"] == {
        "week": "2026-11-16",
        "vehicles_listed": 1,  # v1 (v5 is a draft)
        "offers_received": 3,  # two on v1, one on w2
        "deals_won": 2,  # d1, e1
        "deals_won_value_cad": "22000.00",  # 20,000 + 2,000
        "avg_days_to_sale": 7.5,  # (10 + 5) / 2
        "payments_collected": {"CAD": "20000.00", "XAF": "880000.00"},
    }
    assert by_week["2026-11-09"] == {
        "week": "2026-11-09",
        "vehicles_listed": 1,  # w1
        "offers_received": 1,  # on v3
        "deals_won": 1,  # d2
        "deals_won_value_cad": "13500.00",
        "avg_days_to_sale": 20.0,
        "payments_collected": {"USD": "10000.00"},
    }
    assert by_week["2026-11-02"]["vehicles_listed"] == 2  # v2, v3
    assert by_week["2026-10-19"]["vehicles_listed"] == 1  # v4
    assert by_week["2026-10-26"] == {
        "week": "2026-10-26",
        "vehicles_listed": 0,
        "offers_received": 0,
        "deals_won": 0,
        "deals_won_value_cad": "0.00",
        "avg_days_to_sale": None,
        "payments_collected": {},
    }
    # w2 (June) is outside the window: the weeks add up to the totals less it.
    assert sum(w["vehicles_listed"] for w in weeks) == 5
    assert sum(w["deals_won"] for w in weeks) == 3
