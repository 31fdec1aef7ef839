"""The platform's queues as the Redis broker holds them (depth, oldest message age), and pausing
or resuming their consumption. Read by /metrics and the ops dashboard; all reads time-bounded."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import lru_cache

import redis
from celery import Celery
from django.conf import settings

from jobs.celery_app import app
from jobs.queues import Queue

# kombu's Redis transport keeps a queue as a list named after it; messages published with a
# priority go to sibling lists "<queue>\x06\x16<step>" (kombu/transport/redis.py: sep,
# priority_steps, _q_for_pri). Publishing LPUSHes and consuming BRPOPs, so the oldest waiting
# message is the last element. Messages with an ETA (countdowns, retries) are not in these
# lists: the worker holds them, reserved, until they are due.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)

# Stamped on every task message this platform publishes (jobs/task_observability.py), so the age
# of the oldest waiting message can be read from the broker.
PUBLISHED_AT_HEADER = "platform_published_at"

PAUSED_QUEUES_KEY = "platform:ops:paused_queues"  # set of queue names
PAUSED_BY_WORKER_KEY = "platform:ops:paused_queue_workers"  # hash: queue -> JSON list of workers

# A scrape or a dashboard load waits at most this long on Redis.
REDIS_TIMEOUT_SECONDS = 0.5
CONTROL_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class QueueStats:
    name: str
    depth: int
    oldest_age_seconds: float | None  # None: empty, or its oldest message carries no stamp
    paused: bool


def broker_redis() -> redis.Redis:
    """A client on the broker with short timeouts: a hung Redis answers an error, quickly."""
    return redis.Redis.from_url(
        settings.CELERY_BROKER_URL,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )


def platform_queue_names() -> list[str]:
    return [queue.value for queue in Queue]


def _priority_keys(queue: str) -> list[str]:
    return [queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS]


def _published_at(raw: bytes | None) -> float | None:
    if not raw:
        return None
    try:
        stamp = json.loads(raw).get("headers", {}).get(PUBLISHED_AT_HEADER)
        return float(stamp) if stamp is not None else None
    except (ValueError, TypeError, AttributeError):
        return None  # a message from another program: no age rather than a failed scrape


def queue_stats(client: redis.Redis | None = None) -> list[QueueStats]:
    """Depth and oldest-message age of every platform queue, in one round trip to Redis."""
    client = client or broker_redis()
    names = platform_queue_names()
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            for key in _priority_keys(name):
                pipe.llen(key)
                pipe.lindex(key, -1)
        pipe.smembers(PAUSED_QUEUES_KEY)
        replies = pipe.execute()
    paused = {member.decode() for member in replies.pop()}
    now = time.time()
    stats = []
    per_queue = 2 * len(PRIORITY_STEPS)
    for index, name in enumerate(names):
        chunk = replies[index * per_queue : (index + 1) * per_queue]
        depth = sum(chunk[0::2])
        stamps = [stamp for stamp in map(_published_at, chunk[1::2]) if stamp is not None]
        age = max(0.0, now - min(stamps)) if stamps else None
        stats.append(QueueStats(name=name, depth=depth, oldest_age_seconds=age, paused=name in paused))
    return stats


def paused_queues(client: redis.Redis | None = None) -> dict[str, list[str]]:
    """Paused queue -> the workers that were consuming it when it was paused."""
    client = client or broker_redis()
    names = sorted(member.decode() for member in client.smembers(PAUSED_QUEUES_KEY))
    workers = client.hmget(PAUSED_BY_WORKER_KEY, names) if names else []
    return {name: json.loads(raw) if raw else [] for name, raw in zip(names, workers, strict=True)}


def _checked(queue: str) -> str:
    if queue not in platform_queue_names():
        raise ValueError(f"queue: {queue!r} is not a platform queue ({', '.join(platform_queue_names())})")
    return queue


def _remember_consumers(client: redis.Redis, queue: str, workers: list[str]) -> None:
    known = json.loads(client.hget(PAUSED_BY_WORKER_KEY, queue) or "[]")
    client.hset(PAUSED_BY_WORKER_KEY, queue, json.dumps(sorted(set(known) | set(workers))))


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
    dead Redis would retry without end (kombu's publish retry has no bound there)."""
    try:
        broker_redis().ping()
    except redis.RedisError as exc:
        raise ConnectionError(f"broker unreachable: {exc}") from exc


def active_queues() -> dict[str, list[str]]:
    """Worker name -> queues it consumes, from the workers that answer within the timeout."""
    require_broker()
    replies = control_app().control.inspect(timeout=CONTROL_TIMEOUT_SECONDS).active_queues() or {}
    return {worker: sorted(q["name"] for q in queues) for worker, queues in sorted(replies.items())}


def pause_queue(*, queue: str) -> list[str]:
    """Stop every worker consuming `queue` (messages stay in Redis); remember it as paused.

    Returns the workers that were consuming it, which resume_queue gives it back to. A worker
    that starts (or restarts) while the queue is paused leaves it alone too (jobs/task_observability.py).
    """
    _checked(queue)
    client = broker_redis()
    # Paused first: a worker starting right now reads the mark and skips the queue.
    client.sadd(PAUSED_QUEUES_KEY, queue)
    consumers = sorted(worker for worker, queues in active_queues().items() if queue in queues)
    _remember_consumers(client, queue, consumers)
    # To every worker, answering or not: one that missed the inspect must stop too.
    control_app().control.cancel_consumer(queue)
    return consumers


def resume_queue(*, queue: str) -> list[str]:
    """Give `queue` back to the workers that consumed it before it was paused; returns them."""
    _checked(queue)
    require_broker()
    client = broker_redis()
    workers = json.loads(client.hget(PAUSED_BY_WORKER_KEY, queue) or "[]")
    if workers:
        # Only to those: a worker dedicated to another queue must not start consuming this one.
        control_app().control.add_consumer(queue, destination=workers)
    client.srem(PAUSED_QUEUES_KEY, queue)
    client.hdel(PAUSED_BY_WORKER_KEY, queue)
    return workers


def note_worker_skipping_paused_queue(*, queue: str, worker: str) -> None:
    """Record that `worker` started while `queue` was paused, so resuming gives it back."""
    _remember_consumers(broker_redis(), queue, [worker])
