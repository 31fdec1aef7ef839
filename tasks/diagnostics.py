"""Diagnostic tasks: a no-op to check a worker end to end (and to benchmark the task base)."""

from tasks.base import platform_task


@platform_task(name="tasks.diagnostics.noop")
def noop(self) -> None:
    """Do nothing; proves that a job goes through broker, worker and result backend."""
    return None
