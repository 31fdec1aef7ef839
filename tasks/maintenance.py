"""Maintenance jobs: the outbox relay (and, with the business jobs, audit-log retention)."""

from jobs.outbox import relay_outbox as relay
from tasks.base import platform_task


@platform_task(name="tasks.maintenance.relay_outbox", soft_time_limit=50, time_limit=60)
def relay_outbox(self) -> dict[str, int]:
    """Publish outbox jobs that were never published, republish those the broker lost."""
    return relay()
