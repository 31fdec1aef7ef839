"""2. Tuned against stock: the platform's worker settings against Celery's defaults, on the same
work (a plain task that writes one effect-ledger row), each drained by a real worker."""

from __future__ import annotations

from bench.drain import drain
from bench.environment import Environment, scaled
from bench.report import Result, Row, ratio

TASK = "bench.tasks.ledger_row"


def run(environment: Environment) -> Result:
    jobs = scaled(5000, 300)
    stock = drain(environment, label="stock", task_name=TASK, jobs=jobs, settings="bench.settings_stock")
    tuned = drain(environment, label="tuned", task_name=TASK, jobs=jobs, settings="bench.settings")
    share = ratio(tuned.jobs_per_second, stock.jobs_per_second)
    return Result(
        key="tuned_vs_stock",
        title="2. Tuned vs stock",
        rows=[
            Row(
                "stock Celery defaults, one ledger row per job",
                stock.jobs_per_second,
                "jobs/s",
                note=f"{stock.done}/{stock.jobs} done",
            ),
            Row(
                "platform settings, one ledger row per job",
                tuned.jobs_per_second,
                "jobs/s",
                baseline=stock.jobs_per_second,
                baseline_label="stock",
                ratio=share,
                note=f"{tuned.done}/{tuned.jobs} done",
            ),
        ],
        goal="tuned >= 1.5x stock",
        goal_met=None if share is None else share >= 1.5,
        notes=[
            "Stock (bench/settings_stock.py): no acks_late, prefetch 4, CELERY_DB_REUSE_MAX unset (the "
            "Django fixup closes the connection around every task), no STARTED tracking, no events, no "
            "time limits; results in django-db. Tuned: the platform's settings (acks_late + "
            "reject_on_worker_lost, prefetch 1, connections reused, STARTED tracked, extended "
            "results, task events). Same task code, same worker command line.",
            "Tuned pays more per job on purpose (at-least-once delivery, a STARTED write, events); "
            "connection reuse is what buys it back.",
        ],
    )
