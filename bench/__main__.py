"""`make bench` (`python -m bench`): run every benchmark, print one table, write bench/results/latest.json.

Benchmarks report; they never fail on a number. A benchmark that cannot run (a missing tool, a
module not written yet) reports why in its row, and the others still run.

Environment: DATABASE_URL (PostgreSQL; default postgres://postgres@127.0.0.1:5432/bench_platform,
created and migrated here), BENCH_QUICK=1 (small counts, a smoke run), BENCH_ONLY=1,3,api (run
some: by number or key), BENCH_REPEATS (drains per configuration in benchmarks 1 and 2, default 2,
and 12, default 3), BENCH_REDIS_URL (use this Redis instead of a private redis-server),
BENCH_KEEP_LOGS=1 (keep the workers' and gunicorn's logs; their directory is printed),
BENCH_ADMIN_TASK_RESULTS and BENCH_ADMIN_OTHERS (bench 10's table sizes; default 10,000,000 and
1,000,000), BENCH_ADMIN_SHAPES (history,bad_week: bench 10's data shapes, both by default).

Benchmark modules import Django, the platform and tests.factories inside their functions: they are
imported here before bench.environment has chosen the settings and created the database.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import traceback
from pathlib import Path

# Dotted module, key: run in this order (the cheap in-process ones last, after the workers).
BENCHMARKS = [
    ("bench.task_overhead", "task_overhead"),
    ("bench.tuned_vs_stock", "tuned_vs_stock"),
    ("bench.enqueue", "enqueue"),
    ("bench.latency", "latency"),
    ("bench.trigger_api_load", "api"),
    ("bench.cache", "cache"),
    ("bench.queries", "queries"),
    ("bench.dashboards", "dashboards"),
    ("bench.cluster_scaleout", "cluster"),
    ("bench.admin_pages", "admin"),
    ("bench.bulk_send", "bulk_send"),
    ("bench.redis_transport", "redis_transport"),
]
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def _selected() -> list[tuple[int, str, str]]:
    wanted = {part.strip() for part in os.environ.get("BENCH_ONLY", "").split(",") if part.strip()}
    chosen = []
    for number, (module, key) in enumerate(BENCHMARKS, start=1):
        if not wanted or str(number) in wanted or key in wanted:
            chosen.append((number, module, key))
    return chosen


def main() -> int:
    from bench.environment import cleanup_logs, prepare, quick
    from bench.report import Result, table, write_json

    started = time.monotonic()
    environment = prepare()
    print(
        f"bench: database {environment.database_url.rsplit('/', 1)[-1]}, redis {environment.redis_url}"
        f"{' (private)' if environment.private_redis else ''}, quick={quick()}",
        flush=True,
    )
    results: list[Result] = []
    try:
        for number, module_name, key in _selected():
            print(f"bench: {number}. {key} ...", flush=True)
            began = time.monotonic()
            try:
                result = importlib.import_module(module_name).run(environment)
            except Exception as exc:  # report and carry on: one broken benchmark hides no other
                traceback.print_exc()
                result = Result(key=key, title=f"{number}. {key}", error=f"{type(exc).__name__}: {exc}")
            result.seconds = round(time.monotonic() - began, 1)
            results.append(result)
            print(f"bench: {number}. {key} done in {result.seconds:.0f} s", flush=True)
    finally:
        environment.stop_all()
    print()
    print(table(results))
    print()
    for result in results:
        for note in result.notes:
            print(f"- {result.title}: {note}")
    for note in environment.notes:
        print(f"- {note}")
    total = time.monotonic() - started
    write_json(
        RESULTS,
        results,
        meta={"quick": quick(), "total_seconds": round(total, 1), "notes": environment.notes},
    )
    print(f"\nbench: wrote {RESULTS} in {total:.0f} s")
    if os.environ.get("BENCH_KEEP_LOGS"):
        print(f"bench: logs kept in {environment.log_dir}")
    cleanup_logs(environment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
