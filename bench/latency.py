"""4. Latency on an idle worker: enqueue-to-start and enqueue-to-done, p50 and p99, one job at a
time. The platform's worker and task base against a bare task on a stock-configured worker.

Start: the task pushes time.time() to a Redis list as its first act (the sender blocks on it).
Done: the result's date_done, stamped by django-celery-results as it stores the result. Both
clocks are this machine's wall clock, compared with the time taken just before `.apply_async()`.
"""

from __future__ import annotations

import time
import uuid

import redis

from bench.drain import QUEUE, producer, reset_broker_and_results
from bench.environment import Environment, scaled, wait_until
from bench.report import Result, Row, percentile, ratio
from bench.tasks import LATENCY_KEY


def series(
    environment: Environment, *, task_name: str, settings: str, jobs: int, transport: str | None = None
) -> dict:
    """`jobs` of `task_name`, one at a time, to a fresh worker under `settings`, published through
    `transport` (bench.drain.producer); p50/p99 in ms, and the samples themselves."""
    from django_celery_results.models import TaskResult

    from tasks.app import app

    reset_broker_and_results(environment)
    client = redis.Redis.from_url(environment.redis_url)
    worker = environment.start_worker(
        name=f"latency-{task_name.rsplit('.', 1)[-1]}", settings=settings, queues=QUEUE
    )
    starts: list[float] = []
    dones: list[float] = []
    try:
        with producer(transport) as publisher:
            for index in range(jobs + 10):  # the first 10 warm the pool children up, unmeasured
                token = str(uuid.uuid4())
                sent = time.time()
                app.send_task(
                    task_name,
                    kwargs={"token": token},
                    task_id=token,
                    queue=QUEUE,
                    producer=publisher,
                )
                popped = client.blpop([LATENCY_KEY], timeout=10)
                if popped is None:
                    break
                got_token, started = popped[1].decode().split()
                if got_token != token:
                    continue
                done_at = wait_until(
                    lambda token=token: (
                        TaskResult.objects.filter(task_id=token, status="SUCCESS")
                        .values_list("date_done", flat=True)
                        .first()
                    ),
                    timeout=10,
                    interval=0.002,
                )
                if index >= 10 and done_at:
                    starts.append(1000 * (float(started) - sent))
                    dones.append(1000 * (done_at.timestamp() - sent))
                time.sleep(0.005)  # let the acknowledgement go out: the next job meets an idle worker
    finally:
        worker.stop()
    return {
        "start_p50": percentile(starts, 50),
        "start_p99": percentile(starts, 99),
        "done_p50": percentile(dones, 50),
        "done_p99": percentile(dones, 99),
        "n": len(starts),
        "starts": starts,
        "dones": dones,
    }


def run(environment: Environment) -> Result:
    jobs = scaled(300, 40)
    stock = series(
        environment, task_name="bench.tasks.bare_stamp_start", settings="bench.settings_stock", jobs=jobs
    )
    ours = series(environment, task_name="bench.tasks.stamp_start", settings="bench.settings", jobs=jobs)
    rows = []
    for key, label in (
        ("start_p50", "enqueue-to-start p50"),
        ("start_p99", "enqueue-to-start p99"),
        ("done_p50", "enqueue-to-done p50"),
        ("done_p99", "enqueue-to-done p99"),
    ):
        rows.append(
            Row(
                label,
                ours[key],
                "ms",
                baseline=stock[key],
                baseline_label="stock",
                ratio=ratio(ours[key], stock[key]),
            )
        )
    start_p99 = ratio(ours["start_p99"], stock["start_p99"])
    return Result(
        key="latency",
        title="4. Latency (idle worker)",
        goal="enqueue-to-start p99 <= 1.5x stock (issue 15)",
        goal_met=None if start_p99 is None else start_p99 <= 1.5,
        rows=rows,
        notes=[
            f"{ours['n']} platform jobs (PlatformTask, platform worker settings) and {stock['n']} stock "
            "jobs (bare task, Celery's defaults), one at a time, worker -P prefork -c 2; the ratio is "
            "platform / stock, so below 1 is faster. Done includes storing the result in django-db "
            "(the platform also writes STARTED first). docs/baselines.md (stock, no result backend): "
            "start p50 2.3 ms, p99 3.6 ms.",
        ],
    )
