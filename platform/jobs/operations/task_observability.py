"""What every process that publishes or runs tasks reports: one JSON-able log line and two metrics
per task outcome, a publish timestamp on every message, and paused queues honoured at start-up.

Imported by the jobs app's ready() (jobs/apps.py), so web, worker and beat all connect these
Celery signals. In a
prefork worker the outcome metrics are written by the pool's child processes: with
PROMETHEUS_MULTIPROC_DIR set they go to files that GET /metrics merges (jobs/operations/metrics.py).
"""

from __future__ import annotations

import logging
import os
import time

from celery import signals
from prometheus_client import Counter, Histogram, multiprocess

from jobs.brokers import PUBLISHED_AT_HEADER, queue_of_delivery
from jobs.operations.queue_ops import (
    note_worker_skipping_paused_queue,
    paused_queues,
    remember_queues_started_with,
)

logger = logging.getLogger("platform.tasks")

TASK_OUTCOMES = Counter(
    "platform_task_outcomes",
    "Task executions by outcome (SUCCESS, FAILURE, RETRY, ...), per task name and queue.",
    ["task", "queue", "state"],
)
TASK_DURATION = Histogram(
    "platform_task_duration_seconds",
    "Wall time of one task execution, per task name and queue.",
    ["task", "queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)

# task id -> monotonic start; an entry lives for one execution (threads pool: one per thread).
_started: dict[str, float] = {}


@signals.before_task_publish.connect
def stamp_published_at(headers: dict | None = None, **_kwargs) -> None:
    # Celery's messages carry no send time; this one lets /metrics tell how long the oldest
    # message of a queue has waited (jobs/brokers/redis_broker.py reads it from the broker).

    if headers is not None:
        headers.setdefault(PUBLISHED_AT_HEADER, time.time())


@signals.task_prerun.connect
def _start_clock(task_id: str | None = None, **_kwargs) -> None:
    if task_id:
        _started[task_id] = time.monotonic()


@signals.task_postrun.connect
def record_task_outcome(task_id=None, task=None, state=None, retval=None, **_kwargs) -> None:
    """Count, time and log one execution. Sent after every execution, whatever its outcome."""
    started = _started.pop(task_id, None)
    duration = time.monotonic() - started if started is not None else 0.0
    request = task.request if task is not None else None
    name = getattr(task, "name", "unknown")
    queue = queue_of_delivery(getattr(request, "delivery_info", None))
    state = state or "UNKNOWN"
    try:
        TASK_OUTCOMES.labels(task=name, queue=queue, state=state).inc()
        TASK_DURATION.labels(task=name, queue=queue).observe(duration)
    except Exception:  # metrics must never turn a task's outcome into a crash
        logger.exception("could not record task metrics")
    line = {
        "event": "task_outcome",
        "task_id": task_id,
        "task": name,
        "queue": queue,
        "attempt": (getattr(request, "retries", 0) or 0) + 1,
        "state": state,
        "duration_ms": round(duration * 1000, 2),
        "worker": getattr(request, "hostname", None),
    }
    if isinstance(retval, BaseException):
        # The exception's type and message, never the task's arguments or result: those may
        # hold personal data (the formatter masks phone numbers in what remains).
        line["error"] = f"{type(retval).__name__}: {retval}"[:500]
    level = logging.WARNING if state == "FAILURE" else logging.INFO
    logger.log(level, "task %s %s in %.1f ms", name, state, duration * 1000, extra=line)


@signals.celeryd_after_setup.connect
def leave_paused_queues_alone(sender=None, instance=None, **_kwargs) -> None:
    """A worker that starts while one of its queues is paused does not consume it.

    Taken out of the worker's queues before its consumer starts: RabbitMQ delivers (and a
    prefetch holds) messages from the moment a consumer subscribes, so stopping it afterwards
    would be too late for them."""

    queues = instance.app.amqp.queues
    remember_queues_started_with(list(queues.consume_from))  # what a resume may give back
    try:
        paused = paused_queues()
    except Exception as exc:  # the database unreachable: consume everything rather than nothing
        logger.warning("could not read paused queues: %s", exc)
        return
    for queue in sorted(set(paused) & set(queues.consume_from)):
        queues.deselect([queue])
        note_worker_skipping_paused_queue(queue=queue, worker=sender)
        logger.warning("queue %s is paused (ops dashboard): %s does not consume it", queue, sender)


@signals.worker_process_shutdown.connect
def _forget_dead_child(pid: int | None = None, **_kwargs) -> None:
    # Multiprocess mode keeps a dead process's live gauges unless told; counters stay summed.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())
