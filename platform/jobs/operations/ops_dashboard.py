"""The operations dashboard in admin (/admin/ops/): the last hour of jobs succeeded and failed per
minute and queue as a chart (jobs/operations/throughput.py), workers and their queues, queue depths now and an
hour ago (jobs/operations/queue_history.py), recent failures, dead letters by task, schedules (next run, last
outcome), the beat leader; actions to pause or resume a queue and to replay dead letters in bulk.

It answers within LOAD_DEADLINE_SECONDS whatever the workers do: worker replies are awaited
CONTROL_TIMEOUT_SECONDS at most, broker and Redis reads have short socket timeouts, and a section
that is not ready by the deadline is shown as unavailable rather than waited for. The broker is
Redis or RabbitMQ (jobs/brokers/); paused queues and the beat leader are read from PostgreSQL.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from jobs.brokers import current_broker
from jobs.dead_letters import ReplayFailed, replay_dead_letters
from jobs.models import DeadLetter
from jobs.operations import queue_history, queue_ops, throughput
from jobs.schedules.scheduler import LeaseStoreUnreachable, read_beat_heartbeat

logger = logging.getLogger(__name__)

LOAD_DEADLINE_SECONDS = 2.5
RECENT_FAILURES = 20
REPLAY_BATCH_LIMIT = 500

# Broker reads run here, side by side; a worker that never answers ties up a thread, not a request.
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ops-dashboard")


# --- Selectors --------------------------------------------------------------------------------


def workers_and_queues() -> dict[str, list[str]]:
    """Worker name -> queues it consumes, from the workers that answer within the timeout."""
    return queue_ops.active_queues()


def broker_state() -> dict:
    """Queue stats from the broker; paused queues and which beat holds the lease, from PostgreSQL."""
    try:
        beat = read_beat_heartbeat()
    except LeaseStoreUnreachable:
        beat = None
    return {
        "broker": current_broker().kind,
        "queues": queue_ops.queue_stats(),
        "paused": queue_ops.paused_queues(),
        "beat_leader": beat["identity"] if beat and beat["leading"] else None,
        "beat_heartbeat_age": beat["age_seconds"] if beat else None,
    }


def recent_failures(*, limit: int = RECENT_FAILURES) -> list[TaskResult]:
    return list(
        TaskResult.objects.filter(status="FAILURE")
        .only("task_id", "task_name", "worker", "date_done", "result")
        .order_by("-date_done")[:limit]
    )


def open_dead_letters_by_task() -> list[dict]:
    return list(
        DeadLetter.objects.filter(status=DeadLetter.Status.OPEN)
        .values("task_name")
        .annotate(count=Count("id"))
        .order_by("-count", "task_name")
    )


@dataclass(frozen=True)
class ScheduleRow:
    name: str
    task: str
    enabled: bool
    schedule: str
    last_run_at: datetime | None
    next_run_at: datetime | None
    last_state: str | None
    last_done_at: datetime | None


def next_run_at(periodic_task: PeriodicTask, now: datetime) -> datetime | None:
    """When beat will next send this schedule, as django-celery-beat's ModelEntry sees it."""
    if not periodic_task.enabled:
        return None
    if periodic_task.one_off and periodic_task.total_run_count:
        return None
    # ModelEntry counts from the last run, or from now for a schedule that never ran.
    last = periodic_task.last_run_at or now
    remaining = periodic_task.schedule.remaining_estimate(last)
    upcoming = now + max(remaining, timedelta(0))
    if periodic_task.start_time and periodic_task.start_time > upcoming:
        upcoming = periodic_task.start_time
    if periodic_task.expires and upcoming > periodic_task.expires:
        return None
    return upcoming


def schedules(*, now: datetime | None = None) -> list[ScheduleRow]:
    now = now or timezone.now()
    rows = []
    for periodic_task in PeriodicTask.objects.select_related(
        "interval", "crontab", "solar", "clocked"
    ).order_by("name"):
        last = (
            TaskResult.objects.filter(task_name=periodic_task.task)
            .order_by("-date_done")
            .only("status", "date_done")
            .first()
        )
        try:
            upcoming = next_run_at(periodic_task, now)
            described = str(periodic_task.scheduler)
        except Exception as exc:  # one broken row must not hide the others
            logger.warning("schedule %s: cannot compute next run: %s", periodic_task.name, exc)
            upcoming, described = None, "?"
        rows.append(
            ScheduleRow(
                name=periodic_task.name,
                task=periodic_task.task,
                enabled=periodic_task.enabled,
                schedule=described,
                last_run_at=periodic_task.last_run_at,
                next_run_at=upcoming,
                last_state=last.status if last else None,
                last_done_at=last.date_done if last else None,
            )
        )
    return rows


def _within(futures: dict, deadline: float) -> dict:
    wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
    results = {}
    for name, future in futures.items():
        if not future.done():
            results[name] = {"error": "no answer in time"}
        elif future.exception() is not None:
            exc = future.exception()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
        else:
            results[name] = {"value": future.result()}
    return results


# --- View ---------------------------------------------------------------------------------------


def may_act(request) -> bool:
    """Whether this staff member may act on jobs and workers (pause a queue, replay dead letters,
    Flower's buttons through the admin: jobs/operations/flower_proxy.py), not only look."""
    return request.user.has_perm("jobs.change_deadletter")


def _act(request) -> None:
    action = request.POST.get("action", "")
    user = request.user.get_username()
    try:
        if action in ("pause", "resume"):
            queue = request.POST.get("queue", "")
            if action == "pause":
                workers = queue_ops.pause_queue(queue=queue)
                consumers = ", ".join(workers) or "no worker that answered"
                messages.success(request, f"Paused {queue} (was consumed by {consumers}).")
            else:
                workers = queue_ops.resume_queue(queue=queue)
                messages.success(request, f"Resumed {queue} on {', '.join(workers) or 'no worker'}.")
            logger.warning("queue %s %sd by %s", queue, action, user)
        elif action == "replay_dead_letters":
            letters = DeadLetter.objects.filter(status=DeadLetter.Status.OPEN)
            task_name = request.POST.get("task", "")
            if task_name:
                letters = letters.filter(task_name=task_name)
            batch = list(letters.order_by("last_failed_at")[:REPLAY_BATCH_LIMIT])
            count = replay_dead_letters(batch, by=user)
            messages.success(request, f"Replayed {count} dead letter(s) of {task_name or 'every task'}.")
        else:
            messages.error(request, f"action: unknown action {action!r}.")
    except (ValueError, ReplayFailed) as exc:
        messages.error(request, str(exc))
    except Exception as exc:  # the broker is down: say so instead of a 500
        logger.exception("ops dashboard action %s failed", action)
        messages.error(request, f"{action} failed: {type(exc).__name__}: {exc}"[:300])


def ops_dashboard(request):
    """GET shows the dashboard; POST performs one action, then redirects back."""
    if request.method == "POST":
        if may_act(request):
            _act(request)
        else:
            messages.error(request, "You are not allowed to act on queues or dead letters.")
        return redirect("ops_dashboard")

    started = time.monotonic()
    futures = {
        "workers": _pool.submit(workers_and_queues),
        "broker": _pool.submit(broker_state),
        "history": _pool.submit(queue_history.depths_ago, 3600),
    }
    # The database answers while the workers are being asked.
    hour = throughput.last_hour(now=timezone.now())
    flower_url = reverse("flower").rstrip("/") if settings.FLOWER_URL else ""
    chart = throughput.render_svg(hour, flower_url=flower_url)  # escapes every name it writes
    context = {
        "throughput_chart": mark_safe(chart),  # noqa: S308 numbers, times and escaped queue names only
        "failing_tasks": hour.failing_tasks,
        "failures": recent_failures(),
        "dead_letters": open_dead_letters_by_task(),
        "schedules": schedules(),
    }
    remote = _within(futures, started + LOAD_DEADLINE_SECONDS)
    broker = remote["broker"].get("value") or {}
    hour_ago = remote["history"].get("value")
    ago_depths = (hour_ago or {}).get("depths", {})
    context.update(
        {
            **admin.site.each_context(request),
            "title": "Operations",
            "workers": remote["workers"].get("value"),
            "workers_error": remote["workers"].get("error"),
            "broker_error": remote["broker"].get("error"),
            "broker": broker.get("broker"),
            "queues": broker.get("queues", []),
            "queue_rows": [(queue, ago_depths.get(queue.name)) for queue in broker.get("queues", [])],
            "hour_ago": hour_ago,
            "history_error": remote["history"].get("error"),
            "flower_url": flower_url,
            "paused": broker.get("paused", {}),
            "beat_leader": broker.get("beat_leader"),
            "beat_heartbeat_age": broker.get("beat_heartbeat_age"),
            "can_act": may_act(request),
            "load_seconds": round(time.monotonic() - started, 2),
        }
    )
    return TemplateResponse(request, "admin/ops/dashboard.html", context)
