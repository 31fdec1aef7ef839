"""5. Trigger API under load: gunicorn as ops/gunicorn.conf.py configures it (gthread, 2 x 4),
`wrk` with 50 connections POSTing /api/v1/jobs for a cheap task, one worker draining at the same
time, all on this machine's cores. Against a bare Django view that publishes the same job (no
auth, rate limit or database row) under the same server, in the same run.

wrk (C, one event loop per thread) is the load generator because a Python client on the same two
cores would measure itself. If it is missing, the bench installs it with apt-get when it can.

BENCH_PROFILE=DIR: `py-spy record` (requirements/dev.txt) samples each gunicorn worker during the
measured runs and writes one flame graph (SVG) per worker and run into DIR; BENCH_PROFILE_FORMAT=raw
writes collapsed stacks instead. A profiled run's figures are lower: py-spy takes its share of
the cores.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from bench.drain import reset_broker_and_results
from bench.environment import ROOT, Environment, quick, wait_until
from bench.report import Result, Row, ratio

CONNECTIONS = 50
TASK = "tasks.deals.send_lead_follow_up"
# A lead that is already lost: the job reads it (one query) and skips it, successfully.
BODY = {"task": TASK, "kwargs": {"lead_id": 0}}  # the id is filled in by run()

_LUA = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{auth}
"""


def ensure_wrk() -> str | None:
    """Path of wrk, installing it from the distribution (Debian/Ubuntu: `wrk`) if possible."""
    found = shutil.which("wrk")
    if found or not shutil.which("apt-get"):
        return found
    if os.geteuid() != 0:
        return None
    for argv in (
        ["apt-get", "install", "-y", "-q", "wrk"],
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "wrk"],
    ):
        subprocess.run(  # noqa: S603 our own fixed argv, no shell
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=300,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if shutil.which("wrk"):
            break
    return shutil.which("wrk")


def _to_ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(output: str) -> dict:
    """requests/s, p50/p99 (ms), requests, non-2xx/3xx and socket errors from `wrk --latency`."""
    figures: dict = {
        "requests_per_second": None,
        "p50_ms": None,
        "p99_ms": None,
        "requests": None,
        "non_2xx": 0,
        "socket_errors": 0,
    }
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
        if match:
            figures[key] = _to_ms(*match.groups())
    if match := re.search(r"Requests/sec:\s+([\d.]+)", output):
        figures["requests_per_second"] = float(match.group(1))
    if match := re.search(r"(\d+) requests in", output):
        figures["requests"] = int(match.group(1))
    if match := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        figures["non_2xx"] = int(match.group(1))
    if match := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        figures["socket_errors"] = sum(int(n) for n in match.groups())
    return figures


def _wrk(wrk: str, url: str, *, seconds: int, auth: str, connections: int = CONNECTIONS) -> dict:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    header = f'wrk.headers["Authorization"] = "Bearer {auth}"' if auth else ""
    script.write_text(_LUA.format(body=json.dumps(json.dumps(BODY)), auth=header))
    argv = [
        wrk,
        "-t2",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)  # noqa: S603 our own fixed argv, no shell
    script.unlink(missing_ok=True)
    figures = parse_wrk(completed.stdout)
    figures["raw"] = completed.stdout + completed.stderr
    return figures


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 a URL of our own local server
            return True
    except urllib.error.HTTPError:
        return True  # 503 from /healthz still means gunicorn serves
    except OSError:
        return False


def _post(url: str, key: str) -> int:
    request = urllib.request.Request(  # noqa: S310 a URL of our own local server
        url,
        data=json.dumps(BODY).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 a URL of our own local server
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _executed_between(start: float, end: float) -> int:
    from datetime import UTC, datetime

    from django_celery_results.models import TaskResult

    return TaskResult.objects.filter(
        task_name=TASK,
        status="SUCCESS",
        date_done__gte=datetime.fromtimestamp(start, UTC),
        date_done__lte=datetime.fromtimestamp(end, UTC),
    ).count()


def run(environment: Environment) -> Result:
    from http_api.keys import create_api_key
    from tests.support.processes import free_port

    result = Result(
        key="api",
        title="5. Trigger API under load",
        goal=">= 0.8x the bare view's req/s, p50 and p99 <= 1.5x (issue 15)",
    )
    wrk = ensure_wrk()
    if wrk is None:
        result.error = "wrk is not installed and could not be installed (apt-get install wrk)"
        return result
    seconds = 4 if quick() else 20
    reset_broker_and_results(environment)
    from bench.data import factories

    BODY["kwargs"]["lead_id"] = factories().make_lead(status="lost").pk
    _, key = create_api_key(name=f"bench-{uuid.uuid4().hex[:12]}")
    cost = _request_cost(environment, key)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    metrics_dir = tempfile.mkdtemp(prefix="metrics-web-", dir=environment.log_dir)
    web = environment.start(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "ops" / "gunicorn.conf.py"),
            "--pythonpath",
            str(ROOT / "platform"),
            "config.wsgi",
        ],
        environment.env(WEB_BIND=f"127.0.0.1:{port}", PROMETHEUS_MULTIPROC_DIR=metrics_dir),
        "gunicorn",
    )
    worker = environment.start_worker(name="api-worker", queues="default")
    try:
        if not wait_until(lambda: _answers(f"{base}/healthz"), timeout=60, interval=0.2):
            result.error = f"gunicorn did not answer:\n{web.tail()}"
            return result
        status = _post(f"{base}/api/v1/jobs", key)
        if status != 202:
            result.error = f"POST /api/v1/jobs answered {status}, not 202"
            return result
        _wrk(wrk, f"{base}/api/v1/jobs", seconds=2, auth=key, connections=8)  # warm both processes up
        _wrk(wrk, f"{base}/bench/bare-job", seconds=2, auth="", connections=8)
        targets = {"bare": ("/bench/bare-job", ""), "api": ("/api/v1/jobs", key)}
        measured: dict[str, list[dict]] = {"bare": [], "api": []}
        # ABBA, each half as long: a machine whose load drifts favours neither (README: noise).
        for label in ("bare", "api", "api", "bare"):
            path, auth = targets[label]
            _drop_backlog(environment)  # each run starts with an idle worker and an empty queue
            began = time.time()
            profilers = _start_profilers(web, f"{label}-{len(measured[label])}", seconds // 2)
            figures = _wrk(wrk, f"{base}{path}", seconds=seconds // 2, auth=auth)
            ended = time.time()
            _stop_profilers(profilers)
            figures["executed_per_second"] = _executed_between(began, ended) / (ended - began)
            figures["backlog_after"] = _queue_depth(environment)
            measured[label].append(figures)
        runs = {label: _combined(halves) for label, halves in measured.items()}
    finally:
        worker.stop()
        web.stop()

    bare, api = runs["bare"], runs["api"]
    errors = (api["non_2xx"] or 0) + (api["socket_errors"] or 0)
    result.rows = [
        Row(
            "requests/s",
            api["requests_per_second"],
            "req/s",
            baseline=bare["requests_per_second"],
            baseline_label="bare view",
            ratio=ratio(api["requests_per_second"], bare["requests_per_second"]),
        ),
        Row(
            "p50 latency",
            api["p50_ms"],
            "ms",
            baseline=bare["p50_ms"],
            baseline_label="bare view",
            ratio=ratio(api["p50_ms"], bare["p50_ms"]),
        ),
        Row(
            "p99 latency",
            api["p99_ms"],
            "ms",
            baseline=bare["p99_ms"],
            baseline_label="bare view",
            ratio=ratio(api["p99_ms"], bare["p99_ms"]),
        ),
        Row(
            "errors (non-2xx + socket)",
            errors,
            "",
            baseline=bare["non_2xx"] + bare["socket_errors"],
            baseline_label="bare view",
            note=f"of {api['requests']} requests",
        ),
        Row(
            "jobs executed meanwhile",
            api["executed_per_second"],
            "jobs/s",
            baseline=bare["executed_per_second"],
            baseline_label="bare view",
            note=f"backlog left: {api['backlog_after']:.0f} (bare: {bare['backlog_after']:.0f})",
        ),
    ]
    ratios = [result.rows[0].ratio, result.rows[1].ratio, result.rows[2].ratio]
    result.goal_met = None if None in ratios else (ratios[0] >= 0.8 and ratios[1] <= 1.5 and ratios[2] <= 1.5)
    result.notes = [
        f"wrk -t2 -c{CONNECTIONS}, bare/API/API/bare {seconds // 2} s each (figures: the mean of "
        f"each pair), POST {{task: {TASK}, kwargs: {{lead_id}}}}; gunicorn -c "
        "ops/gunicorn.conf.py (gthread 2 workers x 4 threads), production settings (JSON request logs, "
        "metrics files); one worker -P prefork -c 2 -Q default draining at the same time; load "
        "generator, web, worker, PostgreSQL and Redis share the machine's cores.",
        f"Per accepted API request: {cost['db_statements']:.1f} database statements "
        f"({', '.join(cost['statement_kinds'])}: the AcceptedJob row in one round trip, its commit not "
        "awaited and no health check before it; the key row is cached for up to 1 s) and "
        f"{cost['redis_commands']:.1f} Redis commands {cost['redis_breakdown']} (commands a Lua script "
        "runs count too: the rate limit's script is one round trip, made once per 50 ms lease here; the job "
        "and its task-sent event are one pipelined round trip); the "
        "rate budget is raised in bench/settings.py so the limiter runs but never refuses. "
        "The bare view (bench/urls.py) parses the body and publishes only: docs/baselines.md's 'no "
        "database' shape (856 req/s, p99 125 ms there).",
        "Accepted is not executed: 'jobs executed meanwhile' is what the worker finished during the "
        "load window, the backlog what it had not.",
    ]
    return result


_PROFILE_FORMATS = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}


def _combined(halves: list[dict]) -> dict:
    """Two runs of one target as one: requests and errors summed; rates, percentiles (an
    approximation: the mean of each run's) and backlog averaged."""
    combined: dict = {"raw": "".join(half["raw"] for half in halves)}
    for key in ("requests", "non_2xx", "socket_errors"):
        combined[key] = sum(half[key] or 0 for half in halves)
    for key in ("requests_per_second", "p50_ms", "p99_ms", "executed_per_second", "backlog_after"):
        values = [half[key] for half in halves if half[key] is not None]
        combined[key] = sum(values) / len(values) if values else None
    return combined


def _start_profilers(web, label: str, seconds: int) -> list[subprocess.Popen]:
    """py-spy on every gunicorn worker (the master's children) when BENCH_PROFILE names a directory."""
    directory = os.environ.get("BENCH_PROFILE")
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not directory or not Path(spy).exists():
        return []
    Path(directory).mkdir(parents=True, exist_ok=True)
    fmt = os.environ.get("BENCH_PROFILE_FORMAT", "flamegraph")
    children = subprocess.run(["pgrep", "-P", str(web.proc.pid)], capture_output=True, text=True)  # noqa: S603, S607 our own fixed argv, no shell; a system tool found on PATH on purpose
    profilers = []
    for pid in children.stdout.split():
        out = Path(directory) / f"{label}-{pid}.{_PROFILE_FORMATS[fmt]}"
        argv = [spy, "record", "--pid", pid, "--duration", str(seconds), "--rate", "200"]
        argv += ["--format", fmt, "--output", str(out), "--nonblocking"]
        profilers.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # noqa: S603 our own fixed argv, no shell
    return profilers


def _stop_profilers(profilers: list[subprocess.Popen]) -> None:
    for profiler in profilers:
        try:
            profiler.wait(timeout=30)
        except subprocess.TimeoutExpired:
            profiler.terminate()


def _request_cost(environment: Environment, key: str, requests: int = 20) -> dict:
    """Database statements and Redis commands of one accepted POST /api/v1/jobs, in this process
    (Django's test client: the same view and middleware, no HTTP server), before anything else runs."""
    import redis
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.enqueue import _command_counts

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}")
    redis_client = redis.Redis.from_url(environment.redis_url)
    client.post("/api/v1/jobs", BODY, content_type="application/json")  # warm
    before = _command_counts(redis_client)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(requests):
            client.post("/api/v1/jobs", BODY, content_type="application/json")
    after = _command_counts(redis_client)
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in after if name != "info"}
    breakdown = {name: round(count / requests, 2) for name, count in sorted(delta.items()) if count}
    kinds = sorted({q["sql"].split(" ", 1)[0] for q in queries.captured_queries})
    _drop_backlog(environment)
    return {
        "db_statements": len(queries.captured_queries) / requests,
        "statement_kinds": kinds,
        "redis_commands": sum(delta.values()) / requests,
        "redis_breakdown": breakdown,
    }


def _drop_backlog(environment: Environment) -> None:
    import redis

    redis.Redis.from_url(environment.redis_url).delete("default")


def _queue_depth(environment: Environment) -> int:
    import redis

    return int(redis.Redis.from_url(environment.redis_url).llen("default"))
