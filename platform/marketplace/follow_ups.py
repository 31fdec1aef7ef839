"""Stalled leads and deals: flag each once per idle period, and follow it up by WhatsApp once.

An idle period begins at a lead's or deal's last activity and ends with the next one
(marketplace.services.record_activity clears `stalled_flagged_at`). check_stalled_deals flags what
has been idle past its threshold (settings.STALLED_LEAD_AFTER_DAYS / STALLED_DEAL_AFTER_DAYS) and
enqueues its follow-up through the outbox in the same transaction; the follow-up message is keyed
by the subject and its period, so any number of follow-up jobs in one period send one message.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from jobs.outbox import enqueue_durably
from jobs.task_names import TaskName
from marketplace.models import Deal, Lead
from marketplace.selectors import stalled_deals, stalled_leads
from marketplace.services import flag_stalled
from messaging.whatsapp import SendOutcome, send_whatsapp_once

logger = logging.getLogger(__name__)

# The WhatsApp rows of follow-ups are scoped to the subject, not to the job (messaging/whatsapp.py).
FOLLOW_UP_SCOPE = "follow-up"


def flag_stalled_leads_and_deals(*, now: datetime, actor: str) -> dict[str, int]:
    """Flag every newly stalled lead and deal and enqueue one follow-up for each."""
    counts = {"leads_flagged": 0, "deals_flagged": 0}
    for model, queryset, task, argument, counter in (
        (Lead, stalled_leads(now=now), TaskName.SEND_LEAD_FOLLOW_UP, "lead_id", "leads_flagged"),
        (Deal, stalled_deals(now=now), TaskName.SEND_DEAL_FOLLOW_UP, "deal_id", "deals_flagged"),
    ):
        for pk in list(queryset.values_list("pk", flat=True)):
            with transaction.atomic():
                # The conditional update is the once-per-period guard, for this job and any other.
                if not flag_stalled(obj=model(pk=pk), now=now, actor=actor):
                    continue
                enqueue_durably(task, **{argument: pk})
            counts[counter] += 1
    return counts


def period_of(obj: Lead | Deal) -> str:
    """The idle period a follow-up belongs to: when it was flagged, or the day for a manual one."""
    if obj.stalled_flagged_at is not None:
        return obj.stalled_flagged_at.isoformat()
    return timezone.localdate().isoformat()


def follow_up_lead(*, lead: Lead) -> SendOutcome | None:
    """Ask the buyer of an open lead whether they are still interested; None if it is closed."""
    if lead.status not in Lead.OPEN_STATUSES:
        logger.info("lead %s is %s: no follow-up", lead.pk, lead.status)
        return None
    vehicle = lead.vehicle
    body = (
        f"Hello {lead.buyer.display_name}, are you still interested in the {vehicle.year} "
        f"{vehicle.make} {vehicle.model}? Reply here and we will get back to you today."
    )
    return send_whatsapp_once(
        scope=FOLLOW_UP_SCOPE,
        key=f"lead:{lead.pk}:{period_of(lead)}",
        to=lead.buyer.phone,
        body=body,
        vehicle_id=vehicle.pk,
    )


def follow_up_deal(*, deal: Deal) -> SendOutcome | None:
    """Nudge the buyer of an open deal that is waiting on them; None if it moved on."""
    if deal.status not in Deal.OPEN_STATUSES:
        logger.info("deal %s is %s: no follow-up", deal.pk, deal.status)
        return None
    vehicle = deal.vehicle
    next_step = {
        Deal.Status.NEGOTIATING: "agree on the price",
        Deal.Status.AGREED: "confirm the details so we can invoice you",
        Deal.Status.INVOICED: "pay the invoice",
    }[deal.status]
    body = (
        f"Hello {deal.buyer.display_name}, your deal #{deal.pk} for the {vehicle.year} {vehicle.make} "
        f"{vehicle.model} is waiting for you to {next_step}. Reply here if you have questions."
    )
    return send_whatsapp_once(
        scope=FOLLOW_UP_SCOPE,
        key=f"deal:{deal.pk}:{period_of(deal)}",
        to=deal.buyer.phone,
        body=body,
        vehicle_id=vehicle.pk,
    )
