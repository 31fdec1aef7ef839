"""The Redis consume paths weighed in docs/brokers/redis-consume-path.md, measured at the Redis
level: one consumer takes and acknowledges N waiting messages of a realistic size, and the
figure is messages per second (and round trips per message), on a private redis-server.

    .venv/bin/python -m bench.consume_paths [N]

- kombu-brpop: kombu's stock path: BRPOP, then a pipeline of ZADD + HSET (the unacked record);
  ack: a pipeline of ZREM + HDEL. Has the window: killed between BRPOP and the pipeline, lost.
- take-script: the platform's path: one EVALSHA that pops and records atomically; ack as kombu.
- streams: XREADGROUP (the pending entries list records it atomically), ack: XACK + XDEL.
- blmove: a per-consumer processing list (BLMOVE, Sidekiq Pro's super_fetch / the "reliable
  queue" pattern); ack: LREM of the raw message from the processing list (O(n) in its length).
"""

from __future__ import annotations

import json
import sys
import time
import uuid

import redis

sys.path.insert(0, "platform")

from jobs.brokers.redis_transport import TAKE_SCRIPT
from tests.support.processes import RedisServer

BODY = "x" * 600  # a Celery task message with its headers is ~1-2 kB


def _message() -> str:
    tag = str(uuid.uuid4())
    return json.dumps(
        {
            "body": BODY,
            "headers": {"id": tag, "task": "probe.effect"},
            "properties": {
                "delivery_tag": tag,
                "delivery_info": {"exchange": "default", "routing_key": "default"},
            },
        }
    )


def _fill_list(client: redis.Redis, n: int) -> None:
    pipe = client.pipeline(transaction=False)
    for _ in range(n):
        pipe.lpush("default", _message())
    pipe.execute()


def kombu_brpop(client: redis.Redis, n: int) -> int:
    _fill_list(client, n)
    started = time.perf_counter()
    for _ in range(n):
        _key, raw = client.brpop(["default"], timeout=1)
        tag = json.loads(raw)["properties"]["delivery_tag"]
        client.pipeline().zadd("unacked_index", {tag: time.time()}).hset(
            "unacked", tag, json.dumps([raw.decode(), "default", "default"])
        ).execute()
        client.pipeline().zrem("unacked_index", tag).hdel("unacked", tag).execute()
    return int(n / (time.perf_counter() - started))


def take_script(client: redis.Redis, n: int) -> int:
    _fill_list(client, n)
    sha = client.script_load(TAKE_SCRIPT)
    started = time.perf_counter()
    for _ in range(n):
        _queue, _raw, tag = client.evalsha(
            sha, 3, "unacked", "unacked_index", "default", repr(time.time()), "default", "1", "wake"
        )
        client.pipeline().zrem("unacked_index", tag).hdel("unacked", tag).execute()
    return int(n / (time.perf_counter() - started))


def streams(client: redis.Redis, n: int) -> int:
    client.xgroup_create("stream", "workers", id="0", mkstream=True)
    pipe = client.pipeline(transaction=False)
    for _ in range(n):
        pipe.xadd("stream", {"m": _message()})
    pipe.execute()
    started = time.perf_counter()
    for _ in range(n):
        [[_stream, [(entry_id, _fields)]]] = client.xreadgroup(
            "workers", "c1", {"stream": ">"}, count=1, block=1000
        )
        client.pipeline().xack("stream", "workers", entry_id).xdel("stream", entry_id).execute()
    return int(n / (time.perf_counter() - started))


def blmove(client: redis.Redis, n: int) -> int:
    _fill_list(client, n)
    started = time.perf_counter()
    for _ in range(n):
        raw = client.blmove("default", "processing:c1", timeout=1, src="RIGHT", dest="LEFT")
        client.lrem("processing:c1", 1, raw)
    return int(n / (time.perf_counter() - started))


PATHS = {"kombu-brpop": kombu_brpop, "take-script": take_script, "streams": streams, "blmove": blmove}


def main(n: int = 20_000) -> dict[str, int]:
    server = RedisServer().start()
    try:
        client = redis.Redis(port=server.port)
        figures = {}
        for name, path in PATHS.items():
            client.flushdb()
            figures[name] = path(client, n)
            print(f"{name:<12} {figures[name]:>7} messages/s (take + ack, one consumer, {n} messages)")
        return figures
    finally:
        server.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
