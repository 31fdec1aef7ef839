"""Payment jobs as task bodies: each Stripe step once, payments recorded once, reminders once a day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditLog
from audit.services import record_audit
from billing.models import Invoice, PaymentAttempt
from billing.payment_processing import PaymentOutcome
from jobs.errors import InvalidArgument
from jobs.models import Effect
from jobs.sealing import unseal
from marketplace.models import Deal
from tasks import payments
from tests.factories import make_invoice
from tests.tasks.conftest import new_job_id, outbox_jobs, run_body

pytestmark = pytest.mark.django_db


def _buyer_attaches_card(fake_stripe, intent_id: str, card: str = "pm_card_visa") -> None:
    # What the buyer's checkout does in the browser: attach a payment method to the intent.
    fake_stripe.intents[intent_id].update(payment_method=card, status="requires_confirmation")


def _advance(invoice, job_id=None):
    return run_body(payments.process_invoice_payment, job_id=job_id, invoice_id=invoice.pk)


def test_invoice_moves_from_open_to_paid_one_stripe_step_at_a_time(fake_stripe):
    invoice = make_invoice(amount="1250.50", currency="CAD")

    assert _advance(invoice) == {
        "invoice_id": invoice.pk,
        "outcome": PaymentOutcome.WAITING,
        "stripe_status": "requires_payment_method",
    }
    invoice.refresh_from_db()
    attempt = PaymentAttempt.objects.get(invoice=invoice)
    assert invoice.status == Invoice.Status.PROCESSING
    assert invoice.stripe_payment_intent_id == attempt.stripe_payment_intent_id
    intent = fake_stripe.intents[attempt.stripe_payment_intent_id]
    assert (intent["amount"], intent["currency"]) == (125050, "cad")

    _buyer_attaches_card(fake_stripe, intent["id"])
    assert _advance(invoice)["outcome"] == "paid"

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_at is not None
    assert invoice.deal.status == Deal.Status.PAID
    assert fake_stripe.idempotency_keys() == [
        f"invoice-{invoice.pk}-attempt-1-create",
        f"invoice-{invoice.pk}-attempt-1-confirm",
    ]


def test_rerunning_each_step_calls_stripe_once_and_records_the_payment_once(fake_stripe):
    invoice = make_invoice()
    job_id = new_job_id()
    _advance(invoice, job_id)
    _advance(invoice, job_id)  # a redelivery: retrieves, does not create a second intent
    assert len(fake_stripe.intents) == 1

    _buyer_attaches_card(fake_stripe, next(iter(fake_stripe.intents)))
    assert _advance(invoice, job_id)["outcome"] == "paid"
    posts_after_paid = len(fake_stripe.requests)
    assert _advance(invoice, job_id)["outcome"] == PaymentOutcome.ALREADY_PAID
    assert _advance(invoice)["outcome"] == PaymentOutcome.ALREADY_PAID

    assert len(fake_stripe.requests) == posts_after_paid  # a paid invoice is never touched again
    assert (
        AuditLog.objects.filter(
            object_type="billing.invoice", object_id=str(invoice.pk), action="payment_recorded"
        ).count()
        == 1
    )
    assert PaymentAttempt.objects.filter(invoice=invoice).count() == 1


def test_declined_card_fails_the_invoice_and_the_attempt_keeps_the_reason(fake_stripe):
    invoice = make_invoice()
    _advance(invoice)
    _buyer_attaches_card(fake_stripe, next(iter(fake_stripe.intents)), card="pm_card_visa_chargeDeclined")

    assert _advance(invoice)["outcome"] == "failed"

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.FAILED
    assert PaymentAttempt.objects.get(invoice=invoice).error_code == "generic_decline"


def test_pending_payments_fan_out_one_durable_job_per_invoice_once_per_job():
    open_invoice, processing = make_invoice(), make_invoice(status=Invoice.Status.PROCESSING)
    make_invoice(status=Invoice.Status.PAID)
    job_id = new_job_id()

    first = run_body(payments.process_pending_payments, job_id=job_id)
    second = run_body(payments.process_pending_payments, job_id=job_id)

    assert (first, second) == ({"enqueued": 2}, {"enqueued": 0})
    jobs = outbox_jobs("tasks.payments.process_invoice_payment")
    assert sorted(j.kwargs["invoice_id"] for j in jobs) == sorted([open_invoice.pk, processing.pk])


def test_unknown_invoice_id_fails_naming_the_argument():
    with pytest.raises(InvalidArgument, match="^invoice_id: no invoice with id 99999999"):
        run_body(payments.process_invoice_payment, invoice_id=99999999)


def test_invoice_deleted_meanwhile_is_a_no_op(fake_stripe):
    invoice = make_invoice()
    record_audit(actor="test", action="create", obj=invoice)
    invoice_id = invoice.pk
    invoice.delete()

    assert _advance(Invoice(pk=invoice_id)) == {
        "invoice_id": invoice_id,
        "status": "skipped",
        "reason": "deleted",
    }
    assert fake_stripe.requests == []


# --- reminders -----------------------------------------------------------------------------
def _overdue_invoice(**kw):
    return make_invoice(due_date=timezone.localdate() - timedelta(days=3), **kw)


def test_overdue_invoice_reminder_is_queued_as_a_whatsapp_to_the_buyer():
    invoice = _overdue_invoice()

    result = run_body(payments.send_payment_reminders)

    assert result["reminded"] == 1
    [job] = outbox_jobs("tasks.notifications.send_whatsapp_message")
    # The outbox row holds them sealed (jobs/sealing.py).
    to, body = unseal(job.kwargs["to"]), unseal(job.kwargs["body"])
    assert to == invoice.deal.buyer.phone
    assert invoice.number in body and "3 days ago" in body
    invoice.refresh_from_db()
    assert invoice.last_reminder_on == timezone.localdate()


def test_reminders_run_twice_by_one_job_or_by_two_jobs_remind_once_a_day():
    invoice = _overdue_invoice()
    job_id = new_job_id()

    run_body(payments.send_payment_reminders, job_id=job_id)
    run_body(payments.send_payment_reminders, job_id=job_id)
    run_body(payments.send_payment_reminders)  # another job the same day (an operator's "run now")

    assert len(outbox_jobs("tasks.notifications.send_whatsapp_message")) == 1
    assert Effect.objects.filter(key=f"reminder:invoice:{invoice.pk}:{timezone.localdate()}").count() == 1


def test_next_day_the_invoice_is_reminded_again():
    invoice = _overdue_invoice()
    run_body(payments.send_payment_reminders)
    Invoice.objects.filter(pk=invoice.pk).update(last_reminder_on=timezone.localdate() - timedelta(days=1))

    run_body(payments.send_payment_reminders)

    assert len(outbox_jobs("tasks.notifications.send_whatsapp_message")) == 2


def test_paid_and_not_yet_due_invoices_are_not_reminded():
    _overdue_invoice(status=Invoice.Status.PAID)
    make_invoice()

    assert run_body(payments.send_payment_reminders)["reminded"] == 0
