"""The words tasks and domain services use to say why a job cannot go on: raise one of these, never
a bare ValueError, and the task base (jobs/task_base.py) knows what to do with it.

- PermanentFailure and its kinds: running the job again cannot help. The job fails at once into a
  dead letter that names the reason, for a person to fix the cause and replay it.
- NotReadyYet: something of our own that waiting may bring (a row another job has not committed
  yet). Retried with backoff like a provider's TransientError, then dead-lettered.
- Deferred, with a DeferReason: not a failure; the job comes back later, its retry budget
  untouched (another execution holds the row it needs, its time budget is spent, the jobs it waits
  for are still running).

Why here: the task base acts on these, and every domain app and task module may import the
machinery, while the machinery imports none of them. Integrations keep their own vocabulary for
outside systems (integrations/errors.py: TransientError, PermanentError, RateLimited for a
provider's rate limit...), which the task base reads the same way; a domain condition is never
raised as one of those (a payment for a void invoice is not Stripe's failure, a row another
execution holds is not Twilio's rate limit). Any other exception still becomes a dead letter: it
is a bug.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class PermanentFailure(Exception):
    """The job cannot succeed however often it runs: a dead letter at once."""


class InvalidArgument(PermanentFailure):
    """The job's arguments cannot be used: a value its argument types refuse (jobs/arguments.py),
    or an id that names nothing. `fields` maps each wrong argument's dotted path (`vin`,
    `recipients.3`) to what is wrong there; the message lists them as `path: problem`."""

    def __init__(self, field: str, problem: str, *, also: Mapping[str, str] | None = None) -> None:
        self.fields: dict[str, str] = {field: problem, **(also or {})}
        super().__init__("; ".join(f"{path}: {what}" for path, what in self.fields.items()))

    @classmethod
    def naming(cls, fields: Mapping[str, str]) -> InvalidArgument:
        """One error for every field a validation found wrong, in order."""
        (field, problem), *others = fields.items()
        return cls(field, problem, also=dict(others))


class UnexpectedState(PermanentFailure):
    """The job's subject is in a state the job must not act on by itself (a payment succeeded for a
    void invoice): a person decides."""


class NotReadyYet(Exception):
    """What the job needs is not there yet, and may be soon (a row another job has not committed):
    retried with backoff, then a dead letter."""


class DeferReason(StrEnum):
    """Why a job is deferred (Deferred.reason)."""

    HELD_ELSEWHERE = "held_elsewhere"  # another execution holds the row this job must act on
    TIME_BUDGET_SPENT = "time_budget_spent"  # this execution used its time; the next carries on
    WAITING_FOR_JOBS = "waiting_for_jobs"  # the jobs this one waits for are not done yet


class Deferred(Exception):
    """Not a failure: the job cannot go on now and runs again (the same job, same id) after
    `retry_after` seconds, without spending its retry budget; bounded by the task's
    `max_deferrals` (jobs/task_base.py), as a provider's RateLimited is."""

    def __init__(self, message: str, *, reason: DeferReason, retry_after: float) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"[{self.reason}] {super().__str__()}"
