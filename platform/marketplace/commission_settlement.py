"""Broker commissions: computed once per deal and broker, settled once, in Decimal, with the
exchange rate used to convert them to CAD recorded on the commission.

A deal earns its broker a commission once it is paid (settings.BROKER_COMMISSION_RATE of the agreed
price, 3 % unless set). Computing locks the deal and relies on the (deal, broker) unique
constraint; settling locks the commission and goes through its state machine (pending ->
settled), with the effect ledger in the same transaction, so reruns and concurrent runs settle
each commission once.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F

from billing.exchange_rates import get_rate
from jobs.ledger import claim_effect
from marketplace.models import Commission, Deal
from marketplace.money import BASE_CURRENCY, to_cents
from marketplace.selectors import pending_commissions
from marketplace.services import create_commission, settle_commission

logger = logging.getLogger(__name__)

# Deals whose money has come in: their broker has earned the commission.
EARNING_STATUSES = (Deal.Status.PAID, Deal.Status.SHIPPING, Deal.Status.COMPLETED)


def commission_rate() -> Decimal:
    return settings.BROKER_COMMISSION_RATE


def commission_amount(deal: Deal) -> Decimal:
    return to_cents(deal.agreed_price * commission_rate())


def compute_commissions(*, actor: str) -> int:
    """Create the commission of every earning deal with a broker that has none; returns how many."""
    created = 0
    candidates = (
        Deal.objects.filter(status__in=EARNING_STATUSES, broker__isnull=False)
        .exclude(commissions__broker=F("broker"))
        .values_list("pk", flat=True)
    )
    for deal_id in list(candidates):
        with transaction.atomic():
            deal = Deal.objects.select_for_update().get(pk=deal_id)
            if deal.broker is None or Commission.objects.filter(deal=deal, broker=deal.broker).exists():
                continue
            create_commission(deal=deal, amount=commission_amount(deal), currency=deal.currency, actor=actor)
        created += 1
    return created


def settle_pending_commissions(*, job_id: str, actor: str) -> dict[str, int]:
    """Settle every pending commission at the current rate to CAD; returns counts."""
    counts = {"settled": 0, "already_settled": 0, "no_rate": 0}
    for commission_id in list(pending_commissions().values_list("pk", flat=True)):
        with transaction.atomic():
            commission = Commission.objects.select_for_update().get(pk=commission_id)
            if commission.status != Commission.Status.PENDING:
                counts["already_settled"] += 1
                continue
            rate = get_rate(base=commission.currency, quote=BASE_CURRENCY)
            if rate is None:
                # Heals once the daily rates job has run; the next run settles it.
                logger.warning(
                    "commission %s: no %s->%s rate yet, left pending",
                    commission_id,
                    commission.currency,
                    BASE_CURRENCY,
                )
                counts["no_rate"] += 1
                continue
            if not claim_effect(f"commission:{commission_id}:settle", job_id=job_id):
                counts["already_settled"] += 1
                continue
            settle_commission(commission_id=commission_id, exchange_rate=rate, actor=actor)
        counts["settled"] += 1
    return counts
