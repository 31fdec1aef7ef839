"""The job machinery's tables, one module each."""

from jobs.models.dead_letter import DeadLetter
from jobs.models.effect import Effect

__all__ = ("DeadLetter", "Effect")
