"""A short history of queue depths, so the ops dashboard can show each queue now against an hour
ago. The broker keeps no history; tasks.maintenance.sample_queue_depths (every minute, beat)
records one sample of every queue's depth in REDIS_URL, newest first, at most SAMPLES_KEPT of
them (a little over two hours): bounded whatever runs.
"""

from __future__ import annotations

import json
import logging
import time

import redis

from jobs.operations.queue_ops import ops_redis, queue_stats

logger = logging.getLogger(__name__)

SAMPLES_KEY = "platform:ops:queue_depth_samples"  # list of {"at": epoch seconds, "depths": {queue: n}}
SAMPLES_KEPT = 150
# A sample counts as "an hour ago" if it was taken within this many seconds of that moment.
TOLERANCE_SECONDS = 300


def record_sample(
    depths: dict[str, int], *, at: float | None = None, client: redis.Redis | None = None
) -> None:
    client = client or ops_redis()
    sample = json.dumps({"at": time.time() if at is None else at, "depths": depths})
    with client.pipeline(transaction=True) as pipe:
        pipe.lpush(SAMPLES_KEY, sample)
        pipe.ltrim(SAMPLES_KEY, 0, SAMPLES_KEPT - 1)
        pipe.execute()


def sample_queue_depths() -> dict[str, int]:
    """Read every platform queue's depth from the broker now and record it. With REDIS_URL down
    the sample is skipped (logged), not failed: a lost minute of history is worth no dead letter."""
    depths = {queue.name: queue.depth for queue in queue_stats()}
    try:
        record_sample(depths)
    except redis.RedisError as exc:
        logger.warning("queue depth sample not recorded (REDIS_URL unreachable): %s", exc)
    return depths


def depths_ago(
    seconds: float = 3600, *, now: float | None = None, client: redis.Redis | None = None
) -> dict | None:
    """The recorded sample nearest to `seconds` ago, {"at", "age_seconds", "depths"}, or None when
    no sample lies within TOLERANCE_SECONDS of that moment (sampling was not running)."""
    client = client or ops_redis()
    now = time.time() if now is None else now
    target = now - seconds
    best = None
    for raw in client.lrange(SAMPLES_KEY, 0, SAMPLES_KEPT - 1):
        sample = json.loads(raw)
        distance = abs(sample["at"] - target)
        if distance <= TOLERANCE_SECONDS and (best is None or distance < best[0]):
            best = (distance, sample)
    if best is None:
        return None
    sample = best[1]
    return {"at": sample["at"], "age_seconds": round(now - sample["at"]), "depths": sample["depths"]}
