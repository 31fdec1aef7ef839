"""Throughput of a real worker on a backlog: queue N jobs, start `celery worker`, time the drain.

The clock is the result backend's own: django-celery-results stamps `date_done` when it stores a
result, so throughput is (N - 1) / (last date_done - first date_done). The worker's start-up
(imports, forking the pool) is outside that window, and measuring adds no work to the task: the
bench only polls one COUNT on the results table four times a second to know when to stop.
Every configuration compared this way stores its results in django-db, so each pays that write.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bench.environment import Environment, wait_until

QUEUE = "default"


@dataclass
class Drain:
    label: str
    jobs: int
    done: int
    seconds: float | None
    jobs_per_second: float | None
    worker_cpu_seconds: float | None  # main process + pool children, during the whole run


def reset_broker_and_results(environment: Environment) -> None:
    """An empty broker and empty result and ledger tables: each drain starts from the same state."""
    import redis
    from django.db import connection

    client = redis.Redis.from_url(environment.redis_url)
    if environment.private_redis is not None:
        client.flushdb()
    else:
        for key in client.scan_iter(match=f"{QUEUE}*"):
            client.delete(key)
        client.delete("unacked", "unacked_index")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE django_celery_results_taskresult, jobs_effect")


def abba(first: str, second: str, repeats: int) -> list[str]:
    """`repeats` runs of each configuration in ABBA order (A B B A A B ...): a machine that slows
    down or warms up during the run favours neither."""
    return ([first, second, second, first] * repeats)[: 2 * repeats]


@contextmanager
def producer(transport: str | None = None) -> Iterator:
    """A producer on the bench's broker: the app's own pool, or a connection of its own through
    `transport` (a kombu transport: "redis", or "module:Class") when given."""
    from tasks.app import app

    if transport is None:
        with app.producer_or_acquire() as pooled:
            yield pooled
        return
    with app.connection_for_write(transport=transport) as connection:
        yield app.amqp.Producer(connection)


def publish(task_name: str, count: int, *, transport: str | None = None, **kwargs) -> float:
    """Queue `count` jobs by name from this process (through `transport`, see `producer`);
    returns the seconds it took."""
    from tasks.app import app

    started = time.perf_counter()
    with producer(transport) as publisher:
        for _ in range(count):
            app.send_task(task_name, kwargs=kwargs, queue=QUEUE, producer=publisher)
    return time.perf_counter() - started


def _successes() -> int:
    from django_celery_results.models import TaskResult

    return TaskResult.objects.filter(status="SUCCESS").count()


def _group_cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its live children (Linux /proc), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[2] is the ppid, [3] the pgrp; the worker runs in its own process group.
        if int(fields[3]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def drain(
    environment: Environment,
    *,
    label: str,
    task_name: str,
    jobs: int,
    settings: str = "bench.settings",
    transport: str | None = None,
    timeout: float | None = None,
) -> Drain:
    """Queue `jobs` of `task_name` (through `transport`: the worker's, when `settings` choose
    another than this process's), then time a fresh `celery worker` (prefork, -c 2) draining them."""
    from django.db.models import Max, Min

    reset_broker_and_results(environment)
    publish(task_name, jobs, transport=transport)
    worker = environment.start_worker(name=f"drain-{label}", settings=settings, queues=QUEUE)
    try:
        budget = timeout if timeout is not None else 60 + jobs / 40
        wait_until(lambda: _successes() >= jobs or not worker.alive(), timeout=budget, interval=0.25)
        cpu = _group_cpu_seconds(worker.proc.pid)
    finally:
        worker.stop()
    from django_celery_results.models import TaskResult

    successes = TaskResult.objects.filter(status="SUCCESS")
    stats = successes.aggregate(first=Min("date_done"), last=Max("date_done"))
    done = _successes()
    seconds = rate = None
    if done >= 2 and stats["first"] and stats["last"]:
        seconds = (stats["last"] - stats["first"]).total_seconds()
        rate = (done - 1) / seconds if seconds > 0 else None
    return Drain(
        label=label, jobs=jobs, done=done, seconds=seconds, jobs_per_second=rate, worker_cpu_seconds=cpu
    )
