"""10. Admin pages at the scale of real history (issue 16 point 6): every changelist ops staff open
(tests/support/large_history.py admin_pages: default page, search by id, task-name prefix, each
filter, a deep page) on 10 million task results and 1 million rows in each other table (generated
in SQL, ANALYZEd), fetched with Django's test client as a superuser: the platform's admin against
the admin as it was (bench/stock_admin.py, the same tables, side by side), plus the operations
dashboard and the admin index. BENCH_QUICK=1: 200,000 and 20,000 rows.

Then issue 24's shape (large_history.BAD_WEEK_*: the same number of task results over 4 task names
evenly spread, 2 % FAILURE), where the failed filter and a name prefix each match a large share of
the rows: the failed filter, the name-prefix search and the two combined (bad_week_pages), beside
the stock admin. BENCH_ADMIN_SHAPES=bad_week runs only that part (history: only the first).
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
    shapes = {s.strip() for s in os.environ.get("BENCH_ADMIN_SHAPES", "history,bad_week").split(",")}
    from django.core.management import call_command

    user_model = get_user_model()
    user = user_model.objects.filter(username="bench-admin").first() or user_model.objects.create_superuser(
        "bench-admin", "bench@example.com", "bench-admin-password"
    )
    runs, stock_runs = scaled(5, 2), scaled(2, 1)
    slowest = 0.0
    result.notes = []

    def time_pages(client, pages: dict[str, str]) -> None:
        nonlocal slowest
        for page, path in pages.items():
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

    with override_settings(ALLOWED_HOSTS=["*"], SECURE_SSL_REDIRECT=False, SESSION_COOKIE_SECURE=False):
        client = Client()
        client.force_login(user)
        if "history" in shapes:
            began = time.monotonic()
            large_history.empty()
            large_history.fill(task_results=task_results, others=others)
            # The default schedules, whose last results the operations dashboard looks up.
            call_command("sync_schedules", stdout=io.StringIO())
            generated = time.monotonic() - began
            time_pages(client, large_history.admin_pages())
            for page, url in (("operations dashboard", "/admin/ops/"), ("admin index", "/admin/")):
                value, status = _time(client, url, runs)
                result.rows.append(Row(page, value, "ms", note="" if status == 200 else f"status {status}"))
            result.rows.append(Row("operations dashboard, its database reads", _dashboard_reads(runs), "ms"))
            result.notes.append(
                f"{task_results:,} task results and {others:,} rows in each other table (group results, "
                f"dead letters, effects, outbox, audit log), generated in {generated:.0f} s. The operations "
                "dashboard asks workers to answer within 1 s; the bench runs none, so its time includes "
                "that wait."
            )
        if "bad_week" in shapes:
            # Issue 24's shape: only the task results are generated again.
            began = time.monotonic()
            large_history.empty(("django_celery_results_taskresult",))
            large_history.fill(
                task_results=task_results,
                others=0,
                task_names=large_history.BAD_WEEK_TASK_NAMES,
                statuses=large_history.BAD_WEEK_STATUSES,
                tables=("django_celery_results_taskresult",),
            )
            generated = time.monotonic() - began
            result.rows.append(
                Row(f"issue 24's shape: {task_results:,} task results, 4 names, 2 % FAILURE", None, "")
            )
            time_pages(
                client, {f"[bad week] {page}": path for page, path in large_history.bad_week_pages().items()}
            )
            result.notes.append(
                f"[bad week] rows: {task_results:,} task results over 4 task names evenly spread, "
                f"2 % FAILURE (generated in {generated:.0f} s); each page's name says the share of rows "
                "its filter matches."
            )
    result.goal = f"every changelist under {GOAL_MS} ms"
    result.goal_met = slowest < GOAL_MS
    result.notes.append(
        f"Median of {runs} GETs (stock: {stock_runs}) after one to warm, Django's test client as a "
        "superuser, in this process." + (" Quick run: small tables." if quick() else "")
    )
    large_history.empty()
    return result
