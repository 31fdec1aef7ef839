"""Scale-out: a 3-node RabbitMQ cluster of the test's own, the platform's queues as quorum queues
replicated on all three, workers and app code connected with failover URLs. The node that leads
the queues is SIGKILLed while jobs are being published and run: every job whose `.delay()`
returned runs, and its effect happens once.

Real parts throughout: three `rabbitmq-server` nodes (tests/support/rabbitmq_cluster.py), two
`celery -A tasks worker` prefork processes, a publisher process calling the probe task's
`.delay()`, the test database counting every execution and every effect. Production settings:
nothing is shortened for the test.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from jobs.queues import Queue
from tests.conftest import broker_client
from tests.support.probe.models import ProbeEffect, ProbeExecution
from tests.support.processes import (
    DJANGO_PRELUDE,
    ManagedProcess,
    free_port,
    platform_env,
    start_worker,
    wait_until,
)
from tests.support.rabbitmq_cluster import RabbitCluster, rabbitmq_installed

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.processes,
    pytest.mark.rabbitmq,
    pytest.mark.timeout(240),
]

# How long the cluster may take, after losing the node that led its queues, to serve publishes
# and consumers again (new leaders elected, workers reconnected): about half a second here.
FAILOVER_WINDOW_S = 5.0

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_CONF = ROOT / "ops" / "rabbitmq" / "rabbitmq.conf"
RESULTS = ROOT / "bench" / "results" / "rabbitmq_cluster.json"

# Plain `.delay()`, paced so that publishing straddles the node's loss. Each line of output says
# whether app code got the job accepted (the call returned: the broker confirmed it) or refused
# (the call raised, so the caller knows and keeps it, e.g. in the outbox).
PUBLISHER = """
import sys, time
from tests.support.probe.tasks import effect

prefix, jobs, per_second, sleep = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
began = time.monotonic()
for n in range(jobs):
    marker = f"{prefix}-{n}"
    try:
        effect.delay(marker=marker, sleep=sleep)
    except Exception as error:
        print(f"refused {marker} {time.time():.3f} {error!r} caused by {error.__cause__!r}", flush=True)
    else:
        print(f"accepted {marker} {time.time():.3f}", flush=True)
    time.sleep(max(0.0, began + (n + 1) / per_second - time.monotonic()))  # pacing, not a race
print("published", flush=True)
"""


@pytest.fixture
def rabbit_cluster():
    # A machine without rabbitmq-server fails this test rather than passing it by skipping.
    if not rabbitmq_installed():
        pytest.fail("rabbitmq-server is not installed (apt-get install rabbitmq-server)", pytrace=False)
    # Every node runs production's server settings (consumer_timeout, heartbeat, pause_minority).
    with RabbitCluster(3, server_config=PRODUCTION_CONF.read_text()) as cluster:
        yield cluster


def _start_publisher(env: dict, prefix: str, jobs: int, per_second: float, sleep: float) -> ManagedProcess:
    argv = [sys.executable, "-c", DJANGO_PRELUDE + PUBLISHER, prefix, str(jobs), str(per_second), str(sleep)]
    return ManagedProcess(argv, env, "publisher")


def _published(publisher: ManagedProcess, outcome: str) -> dict[str, float]:
    """{marker: when its `.delay()` returned or raised} for one outcome, accepted or refused."""
    return {
        line.split()[1]: float(line.split()[2])
        for line in list(publisher.output)
        if line.startswith(f"{outcome} ")
    }


def _longest_pause(prefix: str) -> float:
    """The longest time, in seconds, between two consecutive effects of the run."""
    times = sorted(ProbeEffect.objects.filter(marker__startswith=prefix).values_list("created_at", flat=True))
    return max((later - earlier).total_seconds() for earlier, later in itertools.pairwise(times))


def _effect_counts(prefix: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for marker in ProbeEffect.objects.filter(marker__startswith=prefix).values_list("marker", flat=True):
        counts[marker] = counts.get(marker, 0) + 1
    return counts


def test_killing_the_node_that_leads_the_quorum_queues_loses_no_job_and_doubles_no_effect(
    database_url, private_redis, rabbit_cluster, marker, capsys
):
    jobs, per_second, job_sleep = 400, 40.0, 0.05
    cluster = rabbit_cluster
    env = platform_env(
        database_url=database_url, redis_url=private_redis.url, broker_url=cluster.failover_url()
    )
    began = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        workers = list(pool.map(lambda n: start_worker(env, name=f"cluster{n}", concurrency=2), range(2)))
    publisher = None
    try:
        # The workers declared the platform's queues: quorum queues with a member on every node.
        platform_queues = [queue.value for queue in Queue]
        queues = wait_until(
            lambda: (lambda found: found if set(platform_queues) <= set(found) else None)(cluster.queues()),
            timeout=30,
            interval=0.5,
            what="the workers to declare the platform's queues",
        )
        all_nodes = sorted(node.name for node in cluster.nodes)
        for name in platform_queues:
            assert queues[name]["type"] == "quorum", (name, queues[name])
            assert sorted(queues[name]["members"]) == all_nodes, (name, queues[name])
        leader = cluster.node_named(queues[Queue.DEFAULT.value]["leader"])
        led_by_it = sorted(name for name in platform_queues if queues[name]["leader"] == leader.name)
        survivors = [node for node in cluster.nodes if node is not leader]

        publisher = _start_publisher(env, marker, jobs, per_second, job_sleep)
        wait_until(
            lambda: len(_effect_counts(marker)) >= jobs // 4,
            timeout=60,
            interval=0.2,
            what=lambda: f"a quarter of the jobs to run\n{publisher.tail()}\n{workers[0].tail()}",
        )
        seen_before_kill = [len(worker.output) for worker in workers]
        done_at_kill = len(_effect_counts(marker))
        accepted_at_kill = len(_published(publisher, "accepted"))
        cluster.kill(leader)
        killed_at, killed_at_wall = time.monotonic(), time.time()

        wait_until(
            lambda: publisher.saw("published") or publisher.proc.poll() is not None,
            timeout=60,
            what=lambda: f"the publisher to finish\n{publisher.tail()}",
        )
        assert publisher.saw("published"), publisher.tail()
        accepted = _published(publisher, "accepted")
        refused = _published(publisher, "refused")
        wait_until(
            lambda: set(accepted) <= set(_effect_counts(marker)),
            timeout=120,
            interval=0.5,
            what=lambda: (
                f"every accepted job's effect; missing {len(set(accepted) - set(_effect_counts(marker)))}"
                f"\n{workers[0].tail()}\n{workers[1].tail()}"
            ),
        )
        recovered_in = time.monotonic() - killed_at
        # Nothing left in the queue, ready or held by a worker: no redelivery is still to come.
        after = wait_until(
            lambda: (lambda found: found if found[Queue.DEFAULT.value]["messages"] == 0 else None)(
                cluster.queues(via=survivors[0])
            ),
            timeout=60,
            interval=0.5,
            what="the default queue to drain",
        )
    finally:
        if publisher is not None:
            publisher.stop()
        for worker in workers:
            worker.stop()

    counts = _effect_counts(marker)
    executions = ProbeExecution.objects.filter(marker__startswith=marker).count()
    lost = sorted(set(accepted) - set(counts))
    refused_after_kill = sorted(when - killed_at_wall for when in refused.values())
    doubled = sorted(name for name, count in counts.items() if count > 1)
    reconnected_to = [
        sorted(
            node.name
            for node in survivors
            if any(f":{node.amqp_port}//" in line for line in worker.output[seen:] if "Connected to" in line)
        )
        for worker, seen in zip(workers, seen_before_kill, strict=True)
    ]
    figures = {
        "nodes": 3,
        "workers": "2 x prefork 2",
        "jobs_published": jobs,
        "accepted": len(accepted),
        "refused_at_publish": len(refused),
        "refused_s_after_kill": [round(seconds, 2) for seconds in refused_after_kill],
        # A nacked publish may still have reached the queue (kombu retried it on another node).
        "refused_but_ran": len(set(refused) & set(counts)),
        "accepted_before_kill": accepted_at_kill,
        "done_before_kill": done_at_kill,
        "killed_node": leader.name,
        "it_led": led_by_it,
        "new_leader_default": after[Queue.DEFAULT.value]["leader"],
        "online_members_after": sorted(after[Queue.DEFAULT.value]["online"]),
        "executions": executions,
        "re_executions": executions - len(counts),
        "effects": sum(counts.values()),
        "lost": len(lost),
        "doubled": len(doubled),
        "workers_reconnected_to": reconnected_to,
        "longest_pause_in_effects_s": round(_longest_pause(marker), 2),
        "all_done_after_kill_s": round(recovered_in, 1),
        "cluster_start_s": round(cluster.timings["start"], 1),
        "run_s": round(time.monotonic() - began, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2))
    with capsys.disabled():
        print("\n3-node RabbitMQ cluster, queue leader SIGKILLed mid-run:")
        for key, value in figures.items():
            print(f"  {key:<28} {value}")

    assert not lost, f"accepted but never run: {lost[:10]}"
    assert not doubled, f"effects done twice: {doubled[:10]}"
    # Plain `.delay()` never raised: while the queues elected new leaders RabbitMQ refused
    # (nacked) publishes, and the publish paused and tried again (jobs/brokers/rabbitmq_broker.py,
    # pause_after_refusal) instead of giving up after kombu's immediate attempts, one per node.
    assert not refused, "publishes refused during the failover:\n" + "".join(
        line for line in publisher.output if line.startswith("refused ")
    )
    # Workers resume at once: Celery's own delayed-delivery step would first retry the dead node
    # for 1 + 3 + 5 s (jobs/brokers/rabbitmq_delayed_delivery.py).
    assert figures["longest_pause_in_effects_s"] < FAILOVER_WINDOW_S, figures
    assert after[Queue.DEFAULT.value]["leader"] in {node.name for node in survivors}
    assert sorted(after[Queue.DEFAULT.value]["online"]) == sorted(node.name for node in survivors)
    assert all(reconnected_to), f"a worker did not reconnect to a surviving node: {reconnected_to}"
    assert accepted_at_kill < jobs, "the node must be killed while jobs are still being published"


def test_a_worker_whose_first_broker_node_is_down_sets_up_delayed_delivery_through_the_next_at_once(
    rabbit_env, rabbitmq, marker
):
    # A failover list whose first node is down (a closed port), the next the machine's RabbitMQ:
    # the worker connects to the next node and sets up native delayed delivery there once,
    # without first retrying the dead node for 1 + 3 + 5 s as Celery's own step does.
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/{quote(rabbitmq.name, safe='')}"
    env = rabbit_env(CELERY_BROKER_URL=f"{dead};{rabbitmq.url}")
    worker = start_worker(env, name="failover", concurrency=1)
    try:
        job = broker_client(rabbitmq.url).send_task(
            "probe.effect", kwargs={"marker": marker}, queue=Queue.DEFAULT.value, countdown=1
        )
        wait_until(
            lambda: ProbeEffect.objects.filter(marker=marker).exists(),
            timeout=30,
            what=lambda: f"the delayed job {job.id} to run\n{worker.tail()}",
        )
    finally:
        worker.stop()
    output = "".join(worker.output)
    assert "Retrying delayed delivery setup" not in output, output[-3000:]
    assert "Failed to setup delayed delivery" not in output, output[-3000:]
    assert f"Connected to amqp://guest:**@127.0.0.1:{urlsplit(rabbitmq.url).port}/" in output, output[-3000:]
