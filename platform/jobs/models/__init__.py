"""The job machinery's tables, one module each."""

from jobs.models.dead_letter import DeadLetter
from jobs.models.effect import Effect
from jobs.models.outbox import OutboxMessage

__all__ = ("DeadLetter", "Effect", "OutboxMessage")
