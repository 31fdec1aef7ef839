"""Deal jobs: flag stalled leads and deals, and follow each up by WhatsApp once per idle period."""

from __future__ import annotations

from django.utils import timezone

from audit.subjects import fetch_subject
from jobs.task_base import platform_task
from marketplace.follow_ups import flag_stalled_leads_and_deals, follow_up_deal, follow_up_lead
from marketplace.models import Deal, Lead


@platform_task(name="tasks.deals.check_stalled_deals", soft_time_limit=120, time_limit=150)
def check_stalled_deals(self) -> dict[str, int]:
    """Flag leads and deals idle past STALLED_LEAD_AFTER_DAYS / STALLED_DEAL_AFTER_DAYS, each once
    per idle period, and enqueue their follow-ups."""
    return flag_stalled_leads_and_deals(now=timezone.now(), actor="task:tasks.deals.check_stalled_deals")


@platform_task(name="tasks.deals.send_lead_follow_up", soft_time_limit=45, time_limit=60)
def send_lead_follow_up(self, lead_id: int) -> dict:
    """Follow up one lead by WhatsApp (once per lead per idle period)."""
    lead = fetch_subject(
        Lead, lead_id, argument="lead_id", queryset=Lead.objects.select_related("buyer", "vehicle")
    )
    if lead is None:
        return {"lead_id": lead_id, "status": "skipped", "reason": "deleted"}
    return _result("lead_id", lead_id, follow_up_lead(lead=lead))


@platform_task(name="tasks.deals.send_deal_follow_up", soft_time_limit=45, time_limit=60)
def send_deal_follow_up(self, deal_id: int) -> dict:
    """Follow up one deal by WhatsApp (once per deal per idle period)."""
    deal = fetch_subject(
        Deal, deal_id, argument="deal_id", queryset=Deal.objects.select_related("buyer", "vehicle")
    )
    if deal is None:
        return {"deal_id": deal_id, "status": "skipped", "reason": "deleted"}
    return _result("deal_id", deal_id, follow_up_deal(deal=deal))


def _result(argument: str, pk: int, outcome) -> dict:
    if outcome is None:
        return {argument: pk, "status": "skipped", "reason": "closed"}
    if outcome.status == "failed":
        raise ValueError(
            f"{argument}: the buyer's number was refused by Twilio (not a reachable WhatsApp number)"
        )
    return {argument: pk, "status": outcome.status, "sid": outcome.sid}
