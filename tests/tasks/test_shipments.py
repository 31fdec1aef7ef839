"""Shipment jobs: one message per shipment per event, one delay alert per shipment per day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.errors import InvalidArgument
from jobs.models import Effect
from jobs.sealing import unseal
from logistics.models import Shipment, ShipmentEvent
from marketplace.models import Profile
from tasks import shipments
from tests.factories import make_shipment, make_shipment_event
from tests.tasks.conftest import accepted_recipients, new_job_id, outbox_jobs, run_body, run_job

pytestmark = pytest.mark.django_db


def test_untold_events_are_queued_once_each_and_marked_notified():
    shipment = make_shipment()
    departed = make_shipment_event(shipment=shipment, kind=ShipmentEvent.Kind.DEPARTED)
    make_shipment_event(shipment=shipment, kind=ShipmentEvent.Kind.ARRIVED, notified_at=timezone.now())
    job_id = new_job_id()

    assert run_body(shipments.send_shipment_updates, job_id=job_id) == {"queued": 1}
    assert run_body(shipments.send_shipment_updates, job_id=job_id) == {"queued": 0}
    assert run_body(shipments.send_shipment_updates) == {"queued": 0}

    [job] = outbox_jobs("tasks.shipments.send_shipment_notification")
    assert job.kwargs == {"shipment_id": shipment.pk, "event": "departed"}
    departed.refresh_from_db()
    assert departed.notified_at is not None


def test_shipment_notification_is_sent_once_per_shipment_and_event(fake_twilio):
    shipment = make_shipment()
    make_shipment_event(shipment=shipment, kind=ShipmentEvent.Kind.DEPARTED, location="Halifax")

    for _ in range(2):
        run_body(shipments.send_shipment_notification, shipment_id=shipment.pk, event="departed")

    [request] = fake_twilio.sent()
    assert "has left Halifax for Douala" in request.form["Body"]
    assert shipment.tracking_number in request.form["Body"]

    # A second occurrence of the same kind of event is news again.
    make_shipment_event(
        shipment=shipment, kind=ShipmentEvent.Kind.DEPARTED, occurred_at=timezone.now() + timedelta(hours=1)
    )
    run_body(shipments.send_shipment_notification, shipment_id=shipment.pk, event="departed")
    assert accepted_recipients(fake_twilio)[shipment.deal.buyer.phone] == 2


def test_unknown_event_fails_naming_event(fake_twilio):
    with pytest.raises(InvalidArgument, match="^event: input should be 'booked', 'departed'"):
        run_job(shipments.send_shipment_notification, shipment_id=make_shipment().pk, event="sunk")
    assert fake_twilio.sent() == []


def test_delayed_shipments_are_alerted_once_per_shipment_per_day():
    late = make_shipment(eta=timezone.now() - timedelta(days=2))
    make_shipment(eta=timezone.now() + timedelta(days=2))
    make_shipment(eta=timezone.now() - timedelta(days=2), status=Shipment.Status.AT_PORT)
    job_id = new_job_id()

    assert run_body(shipments.check_delayed_shipments, job_id=job_id)["alerted"] == 1
    assert run_body(shipments.check_delayed_shipments, job_id=job_id)["alerted"] == 0
    assert run_body(shipments.check_delayed_shipments)["alerted"] == 0

    [job] = outbox_jobs("tasks.notifications.send_whatsapp_message")
    # The outbox row holds them sealed (jobs/sealing.py).
    assert unseal(job.kwargs["to"]) == late.deal.buyer.phone and "2 days behind" in unseal(job.kwargs["body"])
    assert Effect.objects.filter(key__startswith=f"delay-alert:shipment:{late.pk}:").count() == 1

    Shipment.objects.filter(pk=late.pk).update(last_delay_alert_on=timezone.localdate() - timedelta(days=1))
    assert run_body(shipments.check_delayed_shipments)["alerted"] == 1


def test_delayed_shipment_of_a_buyer_without_phone_is_counted_and_its_day_left_unclaimed():
    late = make_shipment(eta=timezone.now() - timedelta(days=2))
    Profile.objects.filter(pk=late.deal.buyer_id).update(phone="")

    result = run_body(shipments.check_delayed_shipments)

    assert result == {"alerted": 0, "already_alerted": 0, "no_phone": 1}
    assert outbox_jobs("tasks.notifications.send_whatsapp_message") == []
    late.refresh_from_db()
    assert late.last_delay_alert_on is None  # a number added later today still gets today's alert
    assert not Effect.objects.filter(key__startswith=f"delay-alert:shipment:{late.pk}:").exists()
