"""The one error model of every integration: transient (retry later) or permanent (never retry).

Clients map every outside failure to one of these, so the task base (platform/jobs/task_base.py) decides
retries by type alone.
"""


class IntegrationError(Exception):
    """A call to an outside system failed."""

    def __init__(self, message: str, *, provider: str = "", code: str | int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.code = code

    def __str__(self) -> str:
        if not self.provider:
            return self.message
        code = f" {self.code}" if self.code is not None else ""
        return f"[{self.provider}{code}] {self.message}"


class TransientError(IntegrationError):
    """Will likely succeed later: timeouts, connection errors, 5xx, 429. Retried with backoff."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        # Seconds the provider asked us to wait (Retry-After), if it said.
        self.retry_after = retry_after


class RateLimited(TransientError):
    """Our own shared rate limit for a provider is spent: run again after `retry_after` seconds.

    Not a failure: the task base reschedules it without spending a retry attempt's budget."""


class PermanentError(IntegrationError):
    """Will not heal by waiting: 4xx, validation, auth, card declined. Never retried."""


# Narrower kinds, for callers that act on the reason (all still Permanent: never retried).


class InvalidRecipient(PermanentError):
    """The provider will never deliver to this address (invalid, not WhatsApp, unsubscribed)."""


class PaymentDeclined(PermanentError):
    """The card or payment method was declined; `code` is the provider's decline code."""


class InvalidSignature(PermanentError):
    """An inbound webhook or status callback failed signature verification: reject it."""
