"""10. Admin pages at the scale of real history (issue 16 point 6): every changelist ops staff open
(tests/support/large_history.py admin_pages: default page, search by id, task-name prefix, each
filter, a deep page) on 10 million task results and 1 million rows in each other table (generated
in SQL, ANALYZEd), fetched with Django's test client as a superuser: the platform's admin against
the admin as it was (bench/stock_admin.py, the same tables, side by side), plus the operations
dashboard and the admin index. BENCH_QUICK=1: 200,000 and 20,000 rows.
"""

from __future__ import annotations

import io
import os
import time

from bench.environment import Environment, quick, scaled
from bench.report import Result, Row, median, ratio

GOAL_MS = 300


def _time(client, url: str, runs: int) -> tuple[float | None, int]:
    """Median ms of `runs` GETs after one to warm; and the status code."""
    response = client.get(url)
    if response.status_code != 200:
        return None, response.status_code
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        client.get(url)
        timings.append(1000 * (time.perf_counter() - started))
    return median(timings), 200


def _dashboard_reads(runs: int) -> float | None:
    """Median ms of the dashboard's reads of these tables (recent failures, open dead letters by
    task, each schedule's last result), without its wait for workers to answer."""
    from jobs.operations import ops_dashboard

    def read() -> None:
        ops_dashboard.recent_failures()
        ops_dashboard.open_dead_letters_by_task()
        ops_dashboard.schedules()

    read()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        read()
        timings.append(1000 * (time.perf_counter() - started))
    return median(timings)


def run(environment: Environment) -> Result:
    from django.contrib.auth import get_user_model
    from django.test import Client, override_settings

    from tests.support import large_history

    result = Result(key="admin", title="10. Admin pages at scale")
    task_results = int(os.environ.get("BENCH_ADMIN_TASK_RESULTS") or scaled(10_000_000, 200_000))
    others = int(os.environ.get("BENCH_ADMIN_OTHERS") or scaled(1_000_000, 20_000))
    began = time.monotonic()
    from django.core.management import call_command

    large_history.empty()
    large_history.fill(task_results=task_results, others=others)
    # The default schedules, whose last results the operations dashboard looks up.
    call_command("sync_schedules", stdout=io.StringIO())
    generated = time.monotonic() - began

    user_model = get_user_model()
    user = user_model.objects.filter(username="bench-admin").first() or user_model.objects.create_superuser(
        "bench-admin", "bench@example.com", "bench-admin-password"
    )
    runs, stock_runs = scaled(5, 2), scaled(2, 1)
    with override_settings(ALLOWED_HOSTS=["*"], SECURE_SSL_REDIRECT=False, SESSION_COOKIE_SECURE=False):
        client = Client()
        client.force_login(user)
        slowest = 0.0
        for page, path in large_history.admin_pages().items():
            after, status = _time(client, f"/admin/{path}", runs)
            before, stock_status = _time(client, f"/bench/stock-admin/{path}", stock_runs)
            slowest = max(slowest, after or 0.0)
            note = "ratio = times faster"
            if status != 200 or stock_status != 200:
                note = f"status {status}, stock {stock_status}"
            result.rows.append(
                Row(
                    page,
                    after,
                    "ms",
                    baseline=before,
                    baseline_label="stock",
                    ratio=ratio(before, after),
                    note=note,
                )
            )
        for page, url in (("operations dashboard", "/admin/ops/"), ("admin index", "/admin/")):
            value, status = _time(client, url, runs)
            result.rows.append(Row(page, value, "ms", note="" if status == 200 else f"status {status}"))
    result.rows.append(Row("operations dashboard, its database reads", _dashboard_reads(runs), "ms"))
    result.goal = f"every changelist under {GOAL_MS} ms"
    result.goal_met = slowest < GOAL_MS
    result.notes = [
        f"{task_results:,} task results and {others:,} rows in each other table (group results, dead "
        f"letters, effects, outbox, audit log), generated in {generated:.0f} s; median of {runs} GETs "
        f"(stock: {stock_runs}) after one to warm, Django's test client as a superuser, in this process. "
        "The operations dashboard asks workers to answer within 1 s; the bench runs none, so its time "
        "includes that wait." + (" Quick run: small tables." if quick() else ""),
    ]
    large_history.empty()
    return result
