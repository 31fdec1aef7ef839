"""The platform's queues as operators see them (depth, oldest message age, paused), and pausing or
resuming their consumption. Read by /metrics and the ops dashboard; all reads time-bounded.

Depth and age come from the broker, whichever it is (jobs/brokers/). Which queues are paused is
ours, not the broker's: it lives in PostgreSQL (jobs.models.PausedQueue), so it means the same on
Redis and on RabbitMQ, and a Redis outage forgets no pause (docs/redis-outage.md). Pause and
resume reach the workers as Celery control broadcasts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import redis
from celery import Celery
from celery.worker.control import control_command, ok
from django.conf import settings
from django.db import transaction
from django.db.utils import DatabaseError, InterfaceError

from jobs.brokers import BrokerUnreachable, current_broker
from jobs.celery_app import app
from jobs.models import PausedQueue
from jobs.queues import QUEUE_NAMES
from jobs.redis_urls import redis_client

logger = logging.getLogger(__name__)

# A scrape or a dashboard load waits at most this long on Redis (REDIS_URL).
REDIS_TIMEOUT_SECONDS = 0.5
BROKER_PING_TIMEOUT_SECONDS = 1.0
CONTROL_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class QueueStats:
    name: str
    depth: int
    oldest_age_seconds: float | None  # None: empty, or unknown (then age_unknown says why)
    paused: bool | None  # None: the database could not be read
    age_unknown: str = ""
    consumers: int | None = None  # workers consuming it, where the broker says (RabbitMQ)


def ops_redis() -> redis.Redis:
    """A client on REDIS_URL (its current master, behind Sentinel) with short timeouts: a hung
    Redis answers an error, quickly."""
    return redis_client(
        settings.REDIS_URL, master_name=settings.REDIS_SENTINEL_MASTER, timeout=REDIS_TIMEOUT_SECONDS
    )


def platform_queue_names() -> list[str]:
    return list(QUEUE_NAMES)


def queue_stats() -> list[QueueStats]:
    """Depth, oldest-message age and paused flag of every platform queue."""
    depths = current_broker().queue_depths(platform_queue_names())
    try:
        paused: set[str] | None = set(paused_queues())
    except (DatabaseError, InterfaceError) as exc:
        logger.warning("could not read paused queues from the database: %s", exc)
        paused = None
    return [
        QueueStats(
            name=queue.name,
            depth=queue.depth,
            oldest_age_seconds=queue.oldest_age_seconds,
            paused=None if paused is None else queue.name in paused,
            age_unknown=queue.age_unknown,
            consumers=queue.consumers,
        )
        for queue in depths
    ]


def paused_queues() -> dict[str, list[str]]:
    """Paused queue -> the workers that were consuming it when it was paused."""
    return {
        name: list(workers)
        for name, workers in PausedQueue.objects.order_by("name").values_list("name", "workers")
    }


def _checked(queue: str) -> str:
    if queue not in platform_queue_names():
        raise ValueError(f"queue: {queue!r} is not a platform queue ({', '.join(platform_queue_names())})")
    return queue


def _remember_consumers(queue: str, workers: list[str]) -> None:
    with transaction.atomic():
        paused = PausedQueue.objects.select_for_update().filter(name=queue).first()
        if paused is None:  # resumed meanwhile
            return
        paused.workers = sorted(set(paused.workers) | set(workers))
        paused.save(update_fields=["workers"])


@lru_cache(maxsize=4)
def _control_app(broker_url: str) -> Celery:
    # Broadcasts publish through their app's producer pool, bound to that app's broker URL,
    # whatever connection is passed in; a small app of its own per URL keeps control messages
    # on the broker named by settings.CELERY_BROKER_URL now.

    control = Celery("platform-control", broker=broker_url, set_as_current=False)
    control.conf.update(
        broker_transport_options=app.conf.broker_transport_options,
        broker_connection_timeout=app.conf.broker_connection_timeout,
        accept_content=["json"],
        task_serializer="json",
        result_serializer="json",
    )
    return control


def control_app() -> Celery:
    """The Celery app that sends remote-control commands (inspect, pause, resume) to workers."""
    return _control_app(settings.CELERY_BROKER_URL)


def require_broker() -> None:
    """Raise ConnectionError quickly if the broker does not answer: a control broadcast to a
    dead broker would retry without end (kombu's publish retry has no bound there)."""
    try:
        current_broker().ping(BROKER_PING_TIMEOUT_SECONDS)
    except BrokerUnreachable as exc:
        raise ConnectionError(f"broker unreachable: {exc}") from exc


def active_queues() -> dict[str, list[str]]:
    """Worker name -> queues it consumes, from the workers that answer within the timeout."""
    require_broker()
    replies = control_app().control.inspect(timeout=CONTROL_TIMEOUT_SECONDS).active_queues() or {}
    return {worker: sorted(q["name"] for q in queues) for worker, queues in sorted(replies.items())}


def pause_queue(*, queue: str) -> list[str]:
    """Stop every worker consuming `queue` (messages stay in the broker); remember it as paused.

    Returns the workers that were consuming it, which resume_queue gives it back to. A worker
    that starts (or restarts) while the queue is paused leaves it alone too
    (jobs/operations/task_observability.py).
    """
    _checked(queue)
    # Paused first: a worker starting right now reads the mark and skips the queue.
    PausedQueue.objects.get_or_create(name=queue)
    consumers = sorted(worker for worker, queues in active_queues().items() if queue in queues)
    _remember_consumers(queue, consumers)
    # To every worker, answering or not: one that missed the inspect must stop too.
    control_app().control.cancel_consumer(queue)
    return consumers


def resume_queue(*, queue: str) -> list[str]:
    """Give `queue` back to every worker started to consume it; returns the workers known to
    have consumed it when it was paused (or to have skipped it since), for the record.

    The resume goes to every worker, answering or not: each takes the queue back only if it was
    started to consume it (resume_platform_queue below), so a worker too busy to answer the pause's
    inspect is not left without the queue, and a worker dedicated to another queue does not start
    consuming this one."""
    _checked(queue)
    require_broker()
    paused = PausedQueue.objects.filter(name=queue).first()
    workers = list(paused.workers) if paused else []
    # Unmarked first: a worker starting from now on consumes it, and one already running takes
    # it back from the broadcast (taking it twice is a no-op).
    PausedQueue.objects.filter(name=queue).delete()
    control_app().control.broadcast(RESUME_COMMAND, arguments={"queue": queue})
    return workers


# The worker side. `_started_with` is filled in a worker's main process at start-up
# (jobs/operations/task_observability.py), before a paused queue is taken out of what it consumes.
RESUME_COMMAND = "resume_platform_queue"
_started_with: set[str] = set()


def remember_queues_started_with(queues: list[str]) -> None:
    _started_with.update(queues)


@control_command(args=[("queue", str)], signature="<queue>", name=RESUME_COMMAND)
def resume_platform_queue(state, queue: str) -> dict:
    """Consume `queue` again if this worker was started to consume it."""
    if queue not in _started_with:
        return ok(f"{queue} is not one of this worker's queues")
    state.consumer.call_soon(state.consumer.add_task_queue, queue)
    return ok(f"consuming {queue} again")


def note_worker_skipping_paused_queue(*, queue: str, worker: str) -> None:
    """Record that `worker` started while `queue` was paused, so resuming gives it back."""
    _remember_consumers(queue, [worker])
