"""Records each job's retry count in its result row (TaskResult.meta), for GET /api/v1/jobs/<id>.

django-celery-results keeps no retries column; it does store `request.meta` as the row's meta
on every state change (STARTED, RETRY, SUCCESS, FAILURE). Setting it before the task runs costs
nothing extra: the row is written anyway. Connected in TriggerApiConfig.ready(), so every worker
(which sets Django up) records it for every task.
"""

from __future__ import annotations

from celery import signals


@signals.task_prerun.connect(dispatch_uid="trigger_api.record_retries")
def record_retries(task=None, **_kwargs) -> None:  # noqa: ANN001
    request = getattr(task, "request", None)
    if request is None:
        return
    meta = dict(getattr(request, "meta", None) or {})
    meta["retries"] = int(request.retries or 0)
    request.meta = meta
