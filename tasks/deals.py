"""Deal jobs: flag stalled leads and deals, and follow each up by WhatsApp once per idle period."""

from __future__ import annotations

from django.utils import timezone

from audit.subjects import fetch_subject
from jobs.arguments import RowId
from jobs.outcomes import NothingDone, nothing_done
from jobs.task_base import platform_task
from jobs.task_names import TaskName
from marketplace.follow_ups import flag_stalled_leads_and_deals, follow_up_deal, follow_up_lead
from marketplace.models import Deal, Lead
from messaging.whatsapp import SendOutcome


@platform_task(name=TaskName.CHECK_STALLED_DEALS, soft_time_limit=120, time_limit=150)
def check_stalled_deals(self) -> dict[str, int]:
    """Flag leads and deals idle past STALLED_LEAD_AFTER_DAYS / STALLED_DEAL_AFTER_DAYS, each once
    per idle period, and enqueue their follow-ups."""
    return flag_stalled_leads_and_deals(now=timezone.now(), actor=self.actor)


@platform_task(name=TaskName.SEND_LEAD_FOLLOW_UP, soft_time_limit=45, time_limit=60)
def send_lead_follow_up(self, lead_id: RowId) -> dict:
    """Follow up one lead by WhatsApp (once per lead per idle period)."""
    lead = fetch_subject(
        Lead, lead_id, argument="lead_id", queryset=Lead.objects.select_related("buyer", "vehicle")
    )
    if lead is None:
        return nothing_done(NothingDone.DELETED, lead_id=lead_id)
    return _result("lead_id", lead_id, follow_up_lead(lead=lead))


@platform_task(name=TaskName.SEND_DEAL_FOLLOW_UP, soft_time_limit=45, time_limit=60)
def send_deal_follow_up(self, deal_id: RowId) -> dict:
    """Follow up one deal by WhatsApp (once per deal per idle period)."""
    deal = fetch_subject(
        Deal, deal_id, argument="deal_id", queryset=Deal.objects.select_related("buyer", "vehicle")
    )
    if deal is None:
        return nothing_done(NothingDone.DELETED, deal_id=deal_id)
    return _result("deal_id", deal_id, follow_up_deal(deal=deal))


def _result(argument: str, pk: int, outcome: SendOutcome | None) -> dict:
    if outcome is None:
        return nothing_done(NothingDone.CLOSED, **{argument: pk})
    # The buyer's number came from the subject `argument` names.
    outcome.raise_if_refused(argument=argument)
    return {argument: pk, "status": outcome.status, "sid": outcome.sid}
