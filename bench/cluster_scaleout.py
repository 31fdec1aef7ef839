"""9. Scale-out on a RabbitMQ cluster: throughput with 1, 2 and 3 worker hosts.

A 3-node RabbitMQ cluster of the bench's own (tests/support/rabbitmq_cluster.py) with
production's server settings, the platform's queues as quorum queues replicated on all three.
Each worker host is a network namespace with its own network stack (tests/support/worker_hosts.py)
running one `celery -A tasks worker` (prefork, -c 4) that reaches the cluster over a bridge with
a failover URL starting at "its" node (host i lists node i first, as hosts would list the node
nearest them); the database and Redis are reached through forwarders on the bridge.

Each configuration drains the same backlog of `bench.tasks.io_bound` jobs (a 50 ms wait, as an
outside API call takes, then one ledger row). Throughput is counted only once every host of the
configuration is ready: jobs done after that moment over the time until the last one, from the
result backend's date_done stamps. Needs root (`ip netns`) and rabbitmq-server; reports why not
otherwise.
"""

from __future__ import annotations

import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from bench.environment import ROOT, Environment, Process, scaled, wait_until
from bench.report import Result, Row

PRODUCTION_CONF = ROOT / "ops" / "rabbitmq" / "rabbitmq.conf"
TASK = "bench.tasks.io_bound"
WAIT = 0.05
CONCURRENCY = 4

PUBLISH = """
import sys
import django
django.setup()
from tasks.app import app
count = int(sys.argv[1])
with app.producer_or_acquire() as producer:
    for _ in range(count):
        app.send_task("{task}", kwargs={{"wait": {wait}}}, queue="default", producer=producer)
print("published", count, flush=True)
"""


def _why_not() -> str:
    from tests.support.rabbitmq_cluster import rabbitmq_installed

    if os.geteuid() != 0:
        return "needs root for ip netns"
    if not shutil.which("ip") or not shutil.which("socat"):
        return "needs iproute2 (ip) and socat"
    if not rabbitmq_installed():
        return "needs rabbitmq-server"
    return ""


def _reset_results() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE django_celery_results_taskresult, jobs_effect")


def _successes() -> int:
    from django_celery_results.models import TaskResult

    return TaskResult.objects.filter(status="SUCCESS").count()


def _rate_since(moment: datetime) -> tuple[float | None, int]:
    """(jobs per second done after `moment`, how many), from date_done stamps."""
    from django.db.models import Max
    from django_celery_results.models import TaskResult

    after = TaskResult.objects.filter(status="SUCCESS", date_done__gt=moment)
    done = after.count()
    last = after.aggregate(last=Max("date_done"))["last"]
    if done < 2 or last is None or last <= moment:
        return None, done
    return done / (last - moment).total_seconds(), done


def _through(url: str, host: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    credentials = f"{netloc[0]}@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{credentials}{host}:{port}"))


def _start_host_worker(environment: Environment, hosts, index: int, env: dict[str, str]) -> Process:
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks",
        "worker",
        "-Q",
        "default",
        "-n",
        f"host{index}-{os.getpid()}@%h",
        "-l",
        "INFO",
        "-P",
        "prefork",
        "--concurrency",
        str(CONCURRENCY),
    ]
    worker = environment.start(hosts.argv(index, argv), env, f"scaleout-host{index}")
    if not worker.wait_for(" ready.", timeout=120):
        raise RuntimeError(f"worker host {index} did not start:\n{worker.tail()}")
    return worker


def run(environment: Environment) -> Result:
    result = Result(
        key="cluster",
        title="9. Cluster scale-out",
        goal="throughput grows with worker hosts until the machine's two cores are the limit",
    )
    why_not = _why_not()
    if why_not:
        result.error = why_not
        return result

    from tests.support.rabbitmq_cluster import RabbitCluster
    from tests.support.worker_hosts import WorkerHosts

    jobs = scaled(1500, 300)
    rates: dict[int, float | None] = {}
    with WorkerHosts(3) as hosts:
        # Guest over the bridge (a network of the bench's own): production's file refuses it.
        server_config = PRODUCTION_CONF.read_text().replace(
            "loopback_users.guest = true", "loopback_users = none"
        )
        with RabbitCluster(3, server_config=server_config, listen_on=(hosts.gateway,)) as cluster:
            result.notes.append(f"cluster of 3 nodes started in {cluster.timings['start']:.0f} s")
            database = urlsplit(environment.database_url)
            redis = urlsplit(environment.redis_url)
            database_port = hosts.forward(database.hostname, database.port or 5432)
            redis_port = hosts.forward(redis.hostname, redis.port or 6379)
            publisher_env = environment.env(CELERY_BROKER_URL=cluster.failover_url())

            def host_env(index: int) -> dict[str, str]:
                nodes = cluster.nodes[index:] + cluster.nodes[:index]
                return environment.env(
                    CELERY_BROKER_URL=cluster.failover_url(nodes, address=hosts.gateway),
                    DATABASE_URL=_through(environment.database_url, hosts.gateway, database_port),
                    REDIS_URL=_through(environment.redis_url, hosts.gateway, redis_port),
                )

            for count in (1, 2, 3):
                _reset_results()
                published = environment.start(
                    [sys.executable, "-c", PUBLISH.format(task=TASK, wait=WAIT), str(jobs)],
                    publisher_env,
                    f"scaleout-publish{count}",
                )
                if not published.wait_for("published", timeout=120):
                    raise RuntimeError(f"publishing the backlog failed:\n{published.tail()}")
                published.stop()
                with ThreadPoolExecutor(count) as pool:
                    workers = list(
                        pool.map(
                            lambda index: _start_host_worker(environment, hosts, index, host_env(index)),
                            range(count),
                        )
                    )
                all_ready = datetime.now(UTC)
                try:
                    wait_until(lambda: _successes() >= jobs, timeout=60 + jobs / 10, interval=0.25)
                finally:
                    for worker in workers:
                        worker.stop()
                rate, counted = _rate_since(all_ready)
                rates[count] = rate
                result.rows.append(
                    Row(
                        measure=f"{count} worker host{'s' if count > 1 else ''} (-c {CONCURRENCY} each)",
                        value=round(rate, 1) if rate else None,
                        unit="jobs/s",
                        baseline=round(rates[1], 1) if rates.get(1) else None,
                        baseline_label="1 host",
                        ratio=round(rate / rates[1], 2) if rate and rates.get(1) else None,
                        note=f"{counted} of {jobs} jobs done after every host was ready",
                    )
                )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    result.notes.append(
        f"load average at the end (1, 5, 15 min): {load}; other work on the machine lowers every row"
    )
    ideal = CONCURRENCY / WAIT
    result.notes.append(
        f"each host's ceiling is about {ideal:.0f} jobs/s ({CONCURRENCY} processes x a {WAIT * 1000:.0f} ms "
        "wait); the cluster, the database, the hosts' workers and the bench share two cores"
    )
    if rates.get(1) and rates.get(3):
        result.goal_met = rates[3] > rates[1]
    return result


if __name__ == "__main__":
    # `python -m bench.cluster_scaleout`: this benchmark alone, its rows printed.
    from bench.environment import prepare
    from bench.report import table

    environment = prepare()
    try:
        outcome = run(environment)
    finally:
        environment.stop_all()
    print(table([outcome]))
    for note in outcome.notes:
        print(f"- {note}")
    if outcome.error:
        print(f"- error: {outcome.error}")
    sys.exit(0)
