"""12. The Redis transport: the platform's (jobs.brokers.redis_transport: each message taken by one
atomic script into the unacked record, idle consumers waiting on a per-queue wake-up list) against
kombu's stock one (BRPOP, then the record), everything else equal.

Both sides run the same tasks (bare `@shared_task`s, so only the worker's settings act), the same
worker command line, the same Redis and the platform's worker settings (acks_late +
reject_on_worker_lost, prefetch 1, django-db results, events, the same transport options); the only
difference is CELERY_BROKER_TRANSPORT (bench/settings_stock_transport.py), in the worker and in
this process's publisher alike (a stock publisher pushes no wake-up token, which would leave an idle
platform worker to its one-second poll).

a. Drain throughput: bench.drain's drain of a no-op backlog, ABBA order, medians.
b. Enqueue-to-start latency on an idle worker: bench.latency's series, blocks in ABBA order, the
   samples of each side pooled before p50/p99.

Each side's consume path is checked, not assumed: the private Redis's `INFO commandstats` over
each drain must show a BRPOP per job and no BLPOP on the stock side, an EVALSHA per job and no
BRPOP on the platform's (see `_check_consume_path`); otherwise the benchmark reports an error
rather than a comparison of the wrong things.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import redis

from bench.drain import Drain, abba, drain
from bench.environment import Environment, quick, scaled
from bench.latency import series
from bench.report import Result, Row, median, percentile, ratio

DRAIN_TASK = "bench.tasks.bare_noop"
LATENCY_TASK = "bench.tasks.bare_stamp_start"
# The commands that tell one consume path from the other.
CONSUME_COMMANDS = ("brpop", "evalsha", "blpop")


@dataclass(frozen=True)
class Side:
    label: str
    settings: str
    transport: str


PLATFORM = Side("platform", "bench.settings", "jobs.brokers.redis_transport:Transport")
STOCK = Side("stock", "bench.settings_stock_transport", "redis")
SIDES = {side.label: side for side in (STOCK, PLATFORM)}


def _command_calls(client: redis.Redis) -> dict[str, int]:
    """Calls per command since the server started (`INFO commandstats`)."""
    return {
        name.removeprefix("cmdstat_"): stats["calls"] for name, stats in client.info("commandstats").items()
    }


def _counted_drain(
    environment: Environment, client: redis.Redis, side: Side, jobs: int
) -> tuple[Drain, dict]:
    before = _command_calls(client)
    result = drain(
        environment,
        label=f"transport-{side.label}",
        task_name=DRAIN_TASK,
        jobs=jobs,
        settings=side.settings,
        transport=side.transport,
    )
    after = _command_calls(client)
    return result, {name: after.get(name, 0) - before.get(name, 0) for name in after}


def _check_consume_path(side: Side, calls: dict[str, int], done: int) -> str | None:
    """Why a drain's commands do not match `side`'s transport, or None when they do. Stock kombu
    takes each message with a BRPOP and never BLPOPs; the platform's takes with an EVALSHA (kombu
    runs a few scripts of its own too: its mutex, its bindings' expiry) and never BRPOPs."""
    brpop, evalsha, blpop = (calls.get(name, 0) for name in CONSUME_COMMANDS)
    if side is STOCK and (brpop < done or blpop > 0):
        return (
            f"the stock drain ran {done} jobs with {brpop} BRPOP and {blpop} BLPOP: not kombu's consume path"
        )
    if side is PLATFORM and (evalsha < done or brpop > 0):
        return f"the platform drain ran {done} jobs with {evalsha} EVALSHA and {brpop} BRPOP: not its take"
    return None


def run(environment: Environment) -> Result:
    from django.conf import settings

    if settings.CELERY_BROKER_TRANSPORT != PLATFORM.transport:
        raise RuntimeError(
            f"bench settings use {settings.CELERY_BROKER_TRANSPORT!r}, not {PLATFORM.transport}"
        )
    jobs = scaled(5000, 300)
    repeats = int(os.environ.get("BENCH_REPEATS", "1" if quick() else "3"))
    latency_jobs = scaled(300, 40)
    latency_blocks = scaled(2, 1)
    client = redis.Redis.from_url(environment.redis_url)

    # Unmeasured: the first worker after set-up meets cold caches (disk, PostgreSQL, imports).
    drain(environment, label="transport-warmup", task_name=DRAIN_TASK, jobs=min(jobs, 300))
    drains: dict[str, list[Drain]] = {"stock": [], "platform": []}
    calls: dict[str, list[dict]] = {"stock": [], "platform": []}
    for label in abba("stock", "platform", repeats):
        result, counted = _counted_drain(environment, client, SIDES[label], jobs)
        drains[label].append(result)
        calls[label].append(counted)
        mismatch = _check_consume_path(SIDES[label], counted, result.done)
        if mismatch:
            raise RuntimeError(mismatch)

    starts: dict[str, list[float]] = {"stock": [], "platform": []}
    dones: dict[str, list[float]] = {"stock": [], "platform": []}
    for label in abba("stock", "platform", latency_blocks):
        side = SIDES[label]
        samples = series(
            environment,
            task_name=LATENCY_TASK,
            settings=side.settings,
            transport=side.transport,
            jobs=latency_jobs,
        )
        starts[label] += samples["starts"]
        dones[label] += samples["dones"]

    rate = {
        label: median([d.jobs_per_second for d in runs if d.jobs_per_second])
        for label, runs in drains.items()
    }
    cpu_ms = {
        label: median([1000 * d.worker_cpu_seconds / d.done for d in runs if d.worker_cpu_seconds and d.done])
        for label, runs in drains.items()
    }
    start = {(label, pct): percentile(values, pct) for label, values in starts.items() for pct in (50, 99)}
    done = {(label, pct): percentile(values, pct) for label, values in dones.items() for pct in (50, 99)}
    throughput_ratio = ratio(rate["platform"], rate["stock"])
    p99_ratio = ratio(start["platform", 99], start["stock", 99])

    def versus(measure: str, ours: float | None, stock: float | None, unit: str) -> Row:
        return Row(
            measure, ours, unit, baseline=stock, baseline_label="stock kombu", ratio=ratio(ours, stock)
        )

    rows = [
        versus("drain, no-op backlog", rate["platform"], rate["stock"], "jobs/s"),
        versus("enqueue-to-start p50, idle worker", start["platform", 50], start["stock", 50], "ms"),
        versus("enqueue-to-start p99, idle worker", start["platform", 99], start["stock", 99], "ms"),
        versus(
            "worker CPU per job (main + children, start-up included)",
            cpu_ms["platform"],
            cpu_ms["stock"],
            "ms",
        ),
    ]
    goals_met = None
    if throughput_ratio is not None and p99_ratio is not None:
        goals_met = throughput_ratio >= 0.95 and p99_ratio <= 1.2

    def runs_note(label: str) -> str:
        return ", ".join(f"{d.jobs_per_second or 0:.0f}/s ({d.done}/{d.jobs})" for d in drains[label])

    def per_job(label: str) -> str:
        totals = {name: sum(counted.get(name, 0) for counted in calls[label]) for name in CONSUME_COMMANDS}
        drained = sum(d.jobs for d in drains[label]) or 1
        return ", ".join(f"{name.upper()} {totals[name] / drained:.2f}" for name in CONSUME_COMMANDS)

    return Result(
        key="redis_transport",
        title="12. Redis transport (platform vs stock kombu)",
        rows=rows,
        goal="drain >= 0.95x and start p99 <= 1.2x stock (issue 20)",
        goal_met=goals_met,
        notes=[
            f"Drain: {jobs} `{DRAIN_TASK}` jobs queued, then drained by a fresh `celery worker -P prefork "
            f"-c 2`, median of {repeats} drain(s) per transport, ABBA order, after one unmeasured warm-up: "
            f"stock {runs_note('stock')}; platform {runs_note('platform')}. Clock: first to last result "
            "date_done, so each job also pays its STARTED and SUCCESS writes (both sides alike): the "
            "transport's own share of a job is smaller than it would be without a result backend.",
            f"Latency: `{LATENCY_TASK}`, one job at a time, {latency_blocks} block(s) of {latency_jobs} per "
            f"transport in ABBA order, pooled ({len(starts['stock'])} stock / {len(starts['platform'])} "
            f"platform samples); enqueue-to-done p50/p99 (django-db result stored): stock "
            f"{done['stock', 50] or 0:.2f}/{done['stock', 99] or 0:.2f} ms, platform "
            f"{done['platform', 50] or 0:.2f}/{done['platform', 99] or 0:.2f} ms.",
            "Same tasks, worker flags, Redis and settings (bench/settings.py: acks_late + "
            "reject_on_worker_lost, prefetch 1, the same transport options); only CELERY_BROKER_TRANSPORT "
            'differs (bench/settings_stock_transport.py: "redis"), in the workers and in the bench\'s '
            "publisher. Consume-path commands per drained job (INFO commandstats, checked each drain; "
            "EVALSHA includes kombu's own scripts): "
            f"stock {per_job('stock')}; platform {per_job('platform')}.",
        ],
    )
