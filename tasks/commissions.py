"""Commission jobs: compute and settle brokers' commissions, each once."""

from __future__ import annotations

from jobs.task_base import platform_task
from jobs.task_names import TaskName
from marketplace.commission_settlement import compute_commissions, settle_pending_commissions


@platform_task(name=TaskName.PROCESS_PENDING_COMMISSIONS, soft_time_limit=300, time_limit=330)
def process_pending_commissions(self) -> dict[str, int]:
    """Create the commission of each paid deal with a broker, then settle every pending one,
    converting to CAD at the current rate (recorded on the commission)."""
    created = compute_commissions(actor=self.actor)
    return {"computed": created, **settle_pending_commissions(job_id=self.request.id, actor=self.actor)}
