"""1. Task overhead: tasks.maintenance.noop (PlatformTask: acks_late, dead-letter and outbox hooks,
typing checks) against a bare `@shared_task` no-op, drained by the same worker settings."""

from __future__ import annotations

import os

from bench.drain import abba, drain
from bench.environment import Environment, scaled
from bench.report import Result, Row, median, ratio

PLATFORM_TASK = "tasks.maintenance.noop"
BARE_TASK = "bench.tasks.bare_noop"


def run(environment: Environment) -> Result:
    jobs = scaled(5000, 300)
    repeats = int(os.environ.get("BENCH_REPEATS", "1" if scaled(0, 1) else "2"))
    rates: dict[str, list[float]] = {"bare": [], "platform": []}
    drains = []
    # Unmeasured: the first worker after set-up meets cold caches (disk, PostgreSQL, imports).
    drain(environment, label="overhead-warmup", task_name=PLATFORM_TASK, jobs=min(jobs, 300))
    for label in abba("bare", "platform", repeats):
        task = BARE_TASK if label == "bare" else PLATFORM_TASK
        result = drain(environment, label=f"overhead-{label}", task_name=task, jobs=jobs)
        drains.append(result)
        if result.jobs_per_second:
            rates[label].append(result.jobs_per_second)
    bare, ours = median(rates["bare"]), median(rates["platform"])
    share = ratio(ours, bare)
    overhead = None if share is None else 1 - share
    runs = ", ".join(
        f"{d.label.split('-')[1]} {d.jobs_per_second or 0:.0f}/s ({d.done}/{d.jobs} done)" for d in drains
    )
    return Result(
        key="task_overhead",
        title="1. Task overhead",
        rows=[
            Row("bare @shared_task no-op", bare, "jobs/s"),
            Row(
                "PlatformTask no-op (tasks.maintenance.noop)",
                ours,
                "jobs/s",
                baseline=bare,
                baseline_label="bare",
                ratio=share,
            ),
            Row("overhead of the base class", None if overhead is None else 100 * overhead, "%"),
        ],
        goal="PlatformTask >= 0.95x bare (issue 15)",
        goal_met=None if share is None else share >= 0.95,
        notes=[
            f"{jobs} jobs queued, then drained by a fresh `celery worker -P prefork -c 2 -Q default`; "
            f"median of {repeats} run(s) each, ABBA order: {runs}",
            "Both under the platform's worker settings (bench/settings.py = production): acks_late, "
            "prefetch 1, CELERY_DB_REUSE_MAX=1000, django-db results with STARTED tracked and extended "
            "results, task events, metrics files, one JSON log line per task. The ratio isolates the "
            "base class; what the settings cost is benchmark 2.",
            "Clock: first to last result date_done (results table), so worker start-up is excluded "
            "and the task does no extra work to be measured.",
        ],
    )
