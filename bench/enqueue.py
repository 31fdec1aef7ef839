"""3. Enqueue: `.delay()` per second from one process, and the durable path (outbox row in the
caller's transaction, published on commit), with what each costs per job in database round trips
and Redis commands. Against stock Celery's `.delay()` (a bare app, default configuration) in the
same run.

Counting: database statements with Django's CaptureQueriesContext (which logs BEGIN and COMMIT
too: each is a round trip of its own with psycopg2); Redis commands from `INFO commandstats` of
the bench's private redis-server before and after (nothing else talks to it meanwhile: no worker
runs). A pipelined batch is several commands in one round trip: commands bound Redis round trips.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from bench.drain import reset_broker_and_results
from bench.environment import Environment, scaled
from bench.report import Result, Row, median, ratio

SAMPLE = 200  # jobs whose database statements are captured (Django keeps at most 9,000)


def _command_counts(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(values["calls"]) for name, values in stats.items()}


def _measure(client: redis.Redis, jobs: int, enqueue: Callable[[], object]) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(20):  # warm: connections, pools, declared queues
        enqueue()
    # Timed without query capture (it costs time itself); costs counted on a sample of their own.
    before = _command_counts(client)
    started = time.perf_counter()
    for _ in range(jobs):
        enqueue()
    elapsed = time.perf_counter() - started
    after = _command_counts(client)
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    delta.pop("info", None)  # our own measuring
    delta = {name: count for name, count in delta.items() if count}
    with CaptureQueriesContext(connection) as queries:
        for _ in range(SAMPLE):
            enqueue()
    return {
        "per_second": jobs / elapsed,
        "ms_per_job": 1000 * elapsed / jobs,
        "db_round_trips": len(queries.captured_queries) / SAMPLE,
        "redis_commands": sum(delta.values()) / jobs,
        "redis_breakdown": {name: round(count / jobs, 2) for name, count in sorted(delta.items())},
        "statements": sorted({q["sql"].split(" ", 1)[0] for q in queries.captured_queries}),
    }


def _interleaved(jobs: int, enqueuers: dict[str, Callable[[], object]], blocks: int = 10) -> dict[str, float]:
    """Jobs per second of each enqueuer, timed in alternating blocks (ABBA...) and taken as the
    median block: a machine whose load drifts during the run favours none of them."""
    per_block = max(1, jobs // blocks)
    rates: dict[str, list[float]] = {label: [] for label in enqueuers}
    order = list(enqueuers)
    for block in range(blocks):
        for label in order if block % 2 == 0 else reversed(order):
            enqueue = enqueuers[label]
            started = time.perf_counter()
            for _ in range(per_block):
                enqueue()
            rates[label].append(per_block / (time.perf_counter() - started))
    return {label: median(values) for label, values in rates.items()}


def run(environment: Environment) -> Result:
    from celery import Celery
    from django.db import transaction

    from jobs.outbox import enqueue_durably
    from tasks.maintenance import noop

    jobs = scaled(3000, 300)
    client = redis.Redis.from_url(environment.redis_url)
    reset_broker_and_results(environment)

    stock_app = Celery("stock", broker=environment.redis_url)  # Celery's defaults, no Django

    @stock_app.task(name="bench.stock_noop")
    def stock_noop() -> None:
        return None

    stock = _measure(client, jobs, stock_noop.delay)
    ours = _measure(client, jobs, noop.delay)
    # The rates compared: both again, side by side in alternating blocks.
    rates = _interleaved(jobs, {"stock": stock_noop.delay, "ours": noop.delay})
    for measured, label in ((stock, "stock"), (ours, "ours")):
        measured["per_second"] = rates[label]
        measured["ms_per_job"] = 1000 / rates[label]

    def durably() -> None:
        with transaction.atomic():
            enqueue_durably(noop)

    durable = _measure(client, jobs, durably)
    reset_broker_and_results(environment)
    from jobs.models import OutboxMessage

    OutboxMessage.objects.all().delete()
    stock_app.close()

    def costs(measured: dict) -> str:
        return (
            f"{measured['ms_per_job']:.2f} ms, {measured['db_round_trips']:.0f} DB round trips, "
            f"{measured['redis_commands']:.1f} Redis commands per job"
        )

    share = ratio(ours["per_second"], stock["per_second"])
    return Result(
        key="enqueue",
        title="3. Enqueue",
        goal="platform .delay() >= 0.85x stock (issue 15)",
        goal_met=None if share is None else share >= 0.85,
        rows=[
            Row("stock Celery .delay()", stock["per_second"], "jobs/s", note=costs(stock)),
            Row(
                "platform .delay() (tasks.maintenance.noop)",
                ours["per_second"],
                "jobs/s",
                baseline=stock["per_second"],
                baseline_label="stock",
                ratio=ratio(ours["per_second"], stock["per_second"]),
                note=costs(ours),
            ),
            Row(
                "durable: atomic + enqueue_durably + on-commit publish",
                durable["per_second"],
                "jobs/s",
                baseline=ours["per_second"],
                baseline_label=".delay()",
                ratio=ratio(durable["per_second"], ours["per_second"]),
                note=costs(durable),
            ),
        ],
        notes=[
            f"{jobs} jobs each, one process, no worker running; stock and platform .delay() timed in "
            "alternating blocks of a tenth (ABBA), median block. Redis commands per job: stock "
            f"{stock['redis_breakdown']}; platform {ours['redis_breakdown']}; durable "
            f"{durable['redis_breakdown']}. Durable statements: {durable['statements']}; "
            "two commits per job, each waiting for a WAL flush: the transaction's COMMIT, then the "
            "UPDATE of published_at after the publish (autocommit; Django logs no COMMIT for it).",
            "The platform's .delay() also stamps a publish time header and sends a task-sent event "
            "(Flower), and checks arguments against the signature (typing=True); on Redis the job "
            "and its event go in one pipelined round trip (jobs/task_messages.py), so its 2 commands "
            "cost one round trip, as stock's one.",
        ],
    )
