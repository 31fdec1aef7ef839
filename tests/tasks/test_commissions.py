"""Commissions: computed and settled once per deal and broker, in Decimal, with the rate recorded."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marketplace.models import Commission, Deal
from tasks import commissions
from tests.factories import make_commission, make_deal, make_exchange_rate
from tests.tasks.conftest import new_job_id, run_body

pytestmark = pytest.mark.django_db


def test_paid_deal_earns_its_broker_a_commission_settled_in_cad_at_the_recorded_rate():
    make_exchange_rate(base="USD", quote="CAD", rate=Decimal("1.3675000000"))
    deal = make_deal(status=Deal.Status.PAID, agreed_price=Decimal("18333.33"), currency="USD")
    make_deal(status=Deal.Status.NEGOTIATING)
    make_deal(status=Deal.Status.PAID, broker=None)

    result = run_body(commissions.process_pending_commissions)

    assert result == {"computed": 1, "settled": 1, "already_settled": 0, "no_rate": 0}
    commission = Commission.objects.get(deal=deal)
    assert commission.broker_id == deal.broker_id
    assert commission.amount == Decimal("550.00")  # 3 % of 18,333.33, rounded half up to the cent
    assert commission.status == Commission.Status.SETTLED
    assert commission.exchange_rate == Decimal("1.3675000000")
    # 550.00 x 1.3675 = 752.125: money is rounded half up (marketplace.money.to_cents).
    assert commission.amount_cad == Decimal("752.13")


def test_commissions_are_computed_and_settled_once_whatever_runs_twice():
    make_deal(status=Deal.Status.COMPLETED, currency="CAD")
    job_id = new_job_id()

    first = run_body(commissions.process_pending_commissions, job_id=job_id)
    second = run_body(commissions.process_pending_commissions, job_id=job_id)
    third = run_body(commissions.process_pending_commissions)

    assert first["computed"] == 1 and first["settled"] == 1
    assert second["computed"] == third["computed"] == 0
    assert second["settled"] == third["settled"] == 0
    commission = Commission.objects.get()
    assert commission.exchange_rate == Decimal(1)


def test_commission_without_a_known_rate_stays_pending_until_one_exists():
    pending = make_commission(deal=make_deal(status=Deal.Status.PAID, currency="XAF"))

    assert run_body(commissions.process_pending_commissions)["no_rate"] == 1
    pending.refresh_from_db()
    assert pending.status == Commission.Status.PENDING

    make_exchange_rate(base="XAF", quote="CAD", rate=Decimal("0.0022660000"))
    assert run_body(commissions.process_pending_commissions)["settled"] == 1
