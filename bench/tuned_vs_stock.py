"""2. Tuned against stock: the platform's worker settings against Celery's defaults, on the same
work (a plain task that writes one effect-ledger row), each drained by a real worker."""

from __future__ import annotations

import os

from bench.drain import abba, drain
from bench.environment import Environment, scaled
from bench.report import Result, Row, median, ratio

TASK = "bench.tasks.ledger_row"


def run(environment: Environment) -> Result:
    jobs = scaled(5000, 300)
    repeats = int(os.environ.get("BENCH_REPEATS", "1" if scaled(0, 1) else "2"))
    settings = {"stock": "bench.settings_stock", "tuned": "bench.settings"}
    drains = {"stock": [], "tuned": []}
    for label in abba("stock", "tuned", repeats):
        drains[label].append(
            drain(environment, label=label, task_name=TASK, jobs=jobs, settings=settings[label])
        )
    rates = {
        label: median([d.jobs_per_second for d in runs if d.jobs_per_second])
        for label, runs in drains.items()
    }
    runs_note = "; ".join(
        f"{label} " + ", ".join(f"{d.jobs_per_second or 0:.0f}/s ({d.done}/{d.jobs})" for d in runs)
        for label, runs in drains.items()
    )
    stock, tuned = rates["stock"], rates["tuned"]
    share = ratio(tuned, stock)
    return Result(
        key="tuned_vs_stock",
        title="2. Tuned vs stock",
        rows=[
            Row("stock Celery defaults, one ledger row per job", stock, "jobs/s"),
            Row(
                "platform settings, one ledger row per job",
                tuned,
                "jobs/s",
                baseline=stock,
                baseline_label="stock",
                ratio=share,
            ),
        ],
        goal="tuned >= 2x stock (issue 15)",
        goal_met=None if share is None else share >= 2.0,
        notes=[
            f"{jobs} jobs per drain, median of {repeats} drain(s) each, ABBA order: {runs_note}.",
            "Stock (bench/settings_stock.py): no acks_late, prefetch 4, CELERY_DB_REUSE_MAX unset (the "
            "Django fixup closes the connection around every task), no STARTED tracking, no events, no "
            "time limits; results in django-db. Tuned: the platform's settings (acks_late + "
            "reject_on_worker_lost, prefetch 1, connections reused, STARTED tracked, extended "
            "results, task events). Same task code, same worker command line.",
            "Tuned pays more per job on purpose (at-least-once delivery, a STARTED write, events); "
            "connection reuse is what buys it back.",
        ],
    )
