"""Stalled leads and deals: flagged once per idle period, followed up by WhatsApp once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.services import record_audit
from jobs.errors import InvalidArgument
from marketplace.models import Deal, Lead
from marketplace.services import record_activity
from tasks import deals
from tests.factories import make_deal, make_lead
from tests.tasks.conftest import accepted_recipients, new_job_id, outbox_jobs, run_body, run_job

pytestmark = pytest.mark.django_db


def _idle(days: int):
    return timezone.now() - timedelta(days=days)


def test_leads_and_deals_idle_past_their_thresholds_are_flagged_and_followed_up(settings):
    settings.STALLED_LEAD_AFTER_DAYS, settings.STALLED_DEAL_AFTER_DAYS = 3, 7
    stale_lead, fresh_lead = make_lead(last_activity_at=_idle(4)), make_lead(last_activity_at=_idle(2))
    stale_deal = make_deal(status=Deal.Status.AGREED, last_activity_at=_idle(8))
    make_deal(status=Deal.Status.AGREED, last_activity_at=_idle(6))
    make_deal(status=Deal.Status.SHIPPING, last_activity_at=_idle(30))  # waiting on a ship, not a person

    assert run_body(deals.check_stalled_deals) == {"leads_flagged": 1, "deals_flagged": 1}

    assert [j.kwargs for j in outbox_jobs("tasks.deals.send_lead_follow_up")] == [{"lead_id": stale_lead.pk}]
    assert [j.kwargs for j in outbox_jobs("tasks.deals.send_deal_follow_up")] == [{"deal_id": stale_deal.pk}]
    fresh_lead.refresh_from_db()
    assert fresh_lead.stalled_flagged_at is None


def test_a_stalled_lead_is_flagged_once_per_idle_period_by_any_number_of_runs():
    lead = make_lead(last_activity_at=_idle(10))
    job_id = new_job_id()
    run_body(deals.check_stalled_deals, job_id=job_id)
    run_body(deals.check_stalled_deals, job_id=job_id)
    run_body(deals.check_stalled_deals)
    assert len(outbox_jobs("tasks.deals.send_lead_follow_up")) == 1

    # New activity ends the period; idle again past the threshold, it is flagged again.
    record_activity(obj=lead, actor="test", at=_idle(5))
    run_body(deals.check_stalled_deals)
    assert len(outbox_jobs("tasks.deals.send_lead_follow_up")) == 2


def test_lead_follow_up_is_one_whatsapp_per_period_whatever_the_jobs(fake_twilio):
    lead = make_lead(last_activity_at=_idle(10), stalled_flagged_at=timezone.now())

    results = [run_body(deals.send_lead_follow_up, lead_id=lead.pk) for _ in range(3)]

    assert [r["status"] for r in results] == ["sent", "skipped", "skipped"]
    assert accepted_recipients(fake_twilio)[lead.buyer.phone] == 1
    assert "RAV4" in fake_twilio.sent()[0].form["Body"]

    Lead.objects.filter(pk=lead.pk).update(stalled_flagged_at=timezone.now() + timedelta(days=4))
    run_body(deals.send_lead_follow_up, lead_id=lead.pk)
    assert accepted_recipients(fake_twilio)[lead.buyer.phone] == 2


def test_deal_follow_up_names_what_the_deal_waits_for_and_is_sent_once(fake_twilio):
    deal = make_deal(status=Deal.Status.INVOICED, stalled_flagged_at=timezone.now())
    job_id = new_job_id()

    run_body(deals.send_deal_follow_up, job_id=job_id, deal_id=deal.pk)
    run_body(deals.send_deal_follow_up, job_id=job_id, deal_id=deal.pk)

    [request] = fake_twilio.sent()
    assert "pay the invoice" in request.form["Body"]


def test_follow_up_of_a_lead_closed_meanwhile_sends_nothing(fake_twilio):
    lead = make_lead(status=Lead.Status.CONVERTED)

    assert run_body(deals.send_lead_follow_up, lead_id=lead.pk)["reason"] == "closed"
    assert fake_twilio.sent() == []


def test_follow_up_of_an_unknown_lead_fails_naming_lead_id():
    with pytest.raises(InvalidArgument, match="^lead_id: no lead with id 123456789"):
        run_job(deals.send_lead_follow_up, lead_id=123456789)


@pytest.mark.parametrize("deal_id", ["12", 0, -3, True, 1.5])
def test_follow_up_of_a_malformed_deal_id_fails_naming_deal_id(deal_id):
    with pytest.raises(InvalidArgument) as raised:
        run_job(deals.send_deal_follow_up, deal_id=deal_id)
    assert list(raised.value.fields) == ["deal_id"]


def test_follow_up_of_a_lead_deleted_meanwhile_is_a_no_op(fake_twilio):
    lead = make_lead()
    record_audit(actor="test", action="create", obj=lead)
    lead_id = lead.pk
    lead.delete()

    assert run_body(deals.send_lead_follow_up, lead_id=lead_id)["reason"] == "deleted"
    assert fake_twilio.sent() == []
