"""The job machinery's tables, one module each."""

from jobs.models.dead_letter import DeadLetter
from jobs.models.effect import Effect
from jobs.models.outbox import OutboxMessage
from jobs.models.paused_queue import PausedQueue

__all__ = ("DeadLetter", "Effect", "OutboxMessage", "PausedQueue")
