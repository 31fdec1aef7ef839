"""Tasks that apply provider webhook events (enqueued durably by platform/trigger_api/webhooks.py)."""

from tasks.base import platform_task


@platform_task(name="tasks.webhooks.apply_stripe_event", soft_time_limit=30, time_limit=60)
def apply_stripe_event(
    self,
    event_id: str,
    event_type: str,
    payment_intent_id: str,
    invoice_id: str = "",
    amount_minor: int | None = None,
) -> str:
    """Pay or fail the invoice of one verified Stripe payment event, once."""
    from trigger_api.stripe_events import apply_stripe_event as apply

    return apply(
        event_id=event_id,
        event_type=event_type,
        payment_intent_id=payment_intent_id,
        invoice_id=invoice_id,
        amount_minor=amount_minor,
        job_id=self.request.id,
    )
