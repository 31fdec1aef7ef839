"""Read what a Redis broker holds, as kombu's layout keeps it: task messages waiting in queue
lists, and delivered but unacknowledged ones in the `unacked` hash (scored by the `unacked_index`
sorted set). Tests use it to tell a job that is still coming back from one that is gone.
`prefix` is the broker's key prefix (CELERY_BROKER_KEY_PREFIX, kombu's global_keyprefix)."""

from __future__ import annotations

import json

import redis

UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"
PRIORITY_SEPARATOR = "\x06\x16"


def _task_id(payload: dict) -> str:
    return (payload.get("headers") or {}).get("id") or ""


def held_messages(url: str, prefix: str = "") -> list[dict]:
    """The messages delivered to some consumer and not yet acknowledged (kombu payloads)."""
    client = redis.Redis.from_url(url)
    return [json.loads(raw)[0] for raw in client.hvals(prefix + UNACKED)]


def held_task_ids(url: str, prefix: str = "") -> set[str]:
    """Task ids of the messages delivered to some consumer and not yet acknowledged."""
    return {_task_id(message) for message in held_messages(url, prefix)}


def queued_task_ids(url: str, queues: list[str], prefix: str = "") -> set[str]:
    """Task ids of the messages waiting in `queues` (every priority list of each)."""
    client = redis.Redis.from_url(url)
    names = {prefix + queue for queue in queues}
    ids = set()
    for key in client.scan_iter(count=1000):
        name = key.decode()
        if name.split(PRIORITY_SEPARATOR, 1)[0] in names and client.type(key) == b"list":
            ids |= {_task_id(json.loads(raw)) for raw in client.lrange(key, 0, -1)}
    return ids


def index_scores(url: str, prefix: str = "") -> dict[str, float]:
    """Delivery tag -> score in the unacknowledged index (when its holder last vouched for it)."""
    client = redis.Redis.from_url(url)
    return {
        tag.decode(): score for tag, score in client.zrange(prefix + UNACKED_INDEX, 0, -1, withscores=True)
    }


def holds_nothing(url: str, queues: list[str], prefix: str = "") -> bool:
    """Nothing waiting in `queues` and nothing delivered but unacknowledged."""
    return not held_task_ids(url, prefix) and not queued_task_ids(url, queues, prefix)
