"""The words a job's result uses when the job did nothing: `{"status": "skipped", "reason": ...}`.

A job that finds nothing to do has succeeded (no retry, no dead letter); its result says why, in
one of these words, so ops can filter results by them. "skipped" is the status such results have
always had (docs/contract.md says what each "skipped" of a result means). What a service did (a
message sent, an invoice paid) is the service's own enum (messaging.whatsapp.SendStatus, billing's
PaymentOutcome).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

# The `status` of the result of a job that did nothing.
NOTHING_DONE_STATUS = "skipped"


class NothingDone(StrEnum):
    """Why a job did nothing: the `reason` of its result."""

    DELETED = "deleted"  # its subject was deleted after the job was enqueued (audit/subjects.py)
    CLOSED = "closed"  # its subject moved on: a lead converted, a deal closed
    NO_PHONE = "no_phone"  # nobody to tell: the buyer has no phone number


def nothing_done(reason: NothingDone, **subject: Any) -> dict[str, Any]:
    """The result of a job that did nothing: its subject's ids, then why."""
    return {**subject, "status": NOTHING_DONE_STATUS, "reason": reason}
