"""The Redis broker (kombu's Redis transport): the embedded default for `make run` and small sites.

kombu keeps a queue as a Redis list named after it; messages published with a priority go to
sibling lists "<queue>\\x06\\x16<step>" (kombu/transport/redis.py: sep, priority_steps, _q_for_pri).
Publishing LPUSHes and consuming pops from the right (jobs/brokers/redis_transport.py takes with
an atomic script rather than kombu's BRPOP), so the oldest waiting message is the last element, and
its publish stamp (PUBLISHED_AT_HEADER) gives the queue's oldest age. Messages with an ETA
(countdowns, retries) are not in these lists: a worker holds them, reserved, until they are due.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import redis
from django_redis import get_redis_connection
from kombu import Queue as KombuQueue

from jobs.brokers.base import PUBLISHED_AT_HEADER, BrokerUnreachable, QueueDepth
from jobs.redis_urls import redis_client

PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)

# A scrape or a dashboard load waits at most this long on Redis.
READ_TIMEOUT_SECONDS = 0.5
# Redeliveries counted per job attempt in REDIS_URL, kept a day (kombu's Redis transport counts none).
REDELIVERY_KEY = "platform:redeliveries:{task_id}:{retries}"
REDELIVERY_KEY_TTL_SECONDS = 24 * 3600


class RedisBroker:
    kind = "redis"

    def __init__(self, url: str, key_prefix: str = "", master_name: str = "") -> None:
        self.url = url
        self.key_prefix = key_prefix  # kombu's global_keyprefix (CELERY_BROKER_KEY_PREFIX)
        self.master_name = master_name  # a Sentinel URL's master (CELERY_BROKER_SENTINEL_MASTER)

    def client(self, timeout: float = READ_TIMEOUT_SECONDS) -> redis.Redis:
        """A client on the broker (its current master, behind Sentinel) with short timeouts: a
        hung Redis answers an error, quickly."""
        return redis_client(self.url, master_name=self.master_name, timeout=timeout)

    def task_queues(self, names: Sequence[str]) -> list[KombuQueue]:
        return [KombuQueue(name, routing_key=name) for name in names]

    def queue_depths(self, names: Sequence[str]) -> list[QueueDepth]:
        """Every queue's depth and oldest stamp in one round trip."""
        client = self.client()
        try:
            with client.pipeline(transaction=False) as pipe:
                for name in names:
                    for key in _priority_keys(self.key_prefix + name):
                        pipe.llen(key)
                        pipe.lindex(key, -1)
                replies = pipe.execute()
        finally:
            client.close()
        now = time.time()
        per_queue = 2 * len(PRIORITY_STEPS)
        depths = []
        for index, name in enumerate(names):
            chunk = replies[index * per_queue : (index + 1) * per_queue]
            depth = sum(chunk[0::2])
            stamps = [stamp for stamp in map(_published_at, chunk[1::2]) if stamp is not None]
            age = max(0.0, now - min(stamps)) if stamps else None
            unknown = "its oldest message carries no publish stamp" if depth and age is None else ""
            depths.append(QueueDepth(name=name, depth=depth, oldest_age_seconds=age, age_unknown=unknown))
        return depths

    def ping(self, timeout: float) -> dict[str, Any]:
        client = self.client(timeout)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise BrokerUnreachable(f"Redis broker: {exc}") from exc
        finally:
            client.close()
        return {"broker": "redis"}

    def connection_options(self, timeout: float) -> dict[str, Any]:
        # Merged over CELERY_BROKER_TRANSPORT_OPTIONS by Celery (app._connection).
        return {"transport_options": {"socket_timeout": timeout, "socket_connect_timeout": timeout}}

    def publish_options(self, timeout: float) -> dict[str, Any]:
        return {}  # the socket timeouts above bound a publish

    def delivery_count(self, task_id: str, retries: int, headers: dict[str, Any]) -> int:
        # Counted in REDIS_URL (the cache and lock store), not in the broker.
        key = REDELIVERY_KEY.format(task_id=task_id, retries=retries)
        client = get_redis_connection("default")
        count = client.incr(key)
        client.expire(key, REDELIVERY_KEY_TTL_SECONDS)
        return int(count)

    def delay_for_publish(
        self, countdown: float | None, eta: datetime | None, now: datetime
    ) -> tuple[float | None, datetime | None]:
        return countdown, eta  # a worker holds a delayed message until it is due, to the millisecond


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
