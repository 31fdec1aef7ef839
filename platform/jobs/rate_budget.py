"""The live worker processes, for integrations/ratelimit.py's fallback budget while Redis is away.

Without Redis the shared rate limits cannot be shared, so each process keeps the limit divided by
the processes that may call it. Besides those it last saw in Redis, it asks Celery: an inspect
`stats` broadcast over the broker (RabbitMQ answers whatever Redis does), summing each live
worker's pool processes. Asked at most once a minute per process, and only while Redis is down.
"""

from __future__ import annotations

from celery import Celery

from integrations import ratelimit
from jobs.brokers import BrokerUnreachable, current_broker

INSPECT_TIMEOUT_SECONDS = 1.0


def live_worker_processes(app: Celery) -> int | None:
    """Pool processes of every worker that answers within INSPECT_TIMEOUT_SECONDS, or None."""
    try:
        # A broadcast to a broker that does not answer would retry without end: ask it first.
        current_broker().ping(INSPECT_TIMEOUT_SECONDS)
    except BrokerUnreachable:
        return None
    replies = app.control.inspect(timeout=INSPECT_TIMEOUT_SECONDS).stats() or {}
    # A prefork worker lists its child processes, each with a limiter of its own; a threads (or
    # solo) worker is one process whatever its concurrency, its threads sharing one limiter.
    total = sum(len((stats.get("pool") or {}).get("processes") or []) or 1 for stats in replies.values())
    return total or None


def register(app: Celery) -> None:
    ratelimit.set_process_counter(lambda: live_worker_processes(app))
