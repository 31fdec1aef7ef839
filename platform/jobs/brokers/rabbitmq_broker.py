"""The RabbitMQ broker (py-amqp): production's recommendation, one node or a cluster.

Every platform queue is a quorum queue (replicated by Raft across the cluster, durable, its
messages on disk) bound to a topic exchange of its own name, so that Celery's native delayed
delivery can route to it: a countdown, ETA or retry delay waits in RabbitMQ's celery_delayed_*
queues and reaches its queue when due, instead of waiting unacknowledged in a worker's memory.
What quorum queues do not have, and how the platform does without:
- global QoS: Celery detects quorum queues and uses a per-consumer prefetch
  (CELERY_WORKER_DETECT_QUORUM_QUEUES);
- message priorities (RabbitMQ 3.x): the platform uses none; urgency is a queue of its own;
- a look at the oldest message without delivering it: oldest-message age is reported unknown.
The queue arguments here are fixed once a queue exists (RabbitMQ refuses a redeclaration that
differs); what may change later (delivery limit, dead-letter exchange) belongs in a policy
(ops/rabbitmq/).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime
from typing import Any

import amqp
from celery.utils.time import maybe_make_aware
from kombu import Exchange
from kombu import Queue as KombuQueue
from kombu.utils.url import maybe_sanitize_url, parse_url

from jobs.brokers.base import BrokerUnreachable, QueueDepth

# Each read (passive declares, a liveness check) waits at most this long on one node.
READ_TIMEOUT_SECONDS = 0.5
QUORUM = {"x-queue-type": "quorum"}
AGE_UNKNOWN = (
    "RabbitMQ shows a quorum queue's oldest message only by delivering it, which would count as a "
    "redelivery of a job; the age is not read"
)
# While a quorum queue elects a new leader (its node was lost), RabbitMQ refuses (nacks) publishes
# for a fraction of a second; kombu retries a refused publish at once on the next node, which
# refuses too, so a plain `.delay()` would raise. Pausing before each such retry lets the election
# finish: at most NACKED_PUBLISH_RETRIES pauses of NACK_PAUSE_SECONDS.
NACK_PAUSE_SECONDS = 0.25
NACKED_PUBLISH_RETRIES = 4
# Native delayed delivery waits whole seconds (kombu's calculate_routing_key refuses less).
SHORTEST_DELAY_SECONDS = 1.0


class RabbitMQBroker:
    kind = "rabbitmq"

    def __init__(self, url: str) -> None:
        self.url = url
        # "amqp://n1;amqp://n2;amqp://n3": one URL per node, in the order workers try them.
        self.node_urls = [node.strip() for node in url.split(";") if node.strip()]

    def task_queues(self, names: Sequence[str]) -> list[KombuQueue]:
        return [
            KombuQueue(
                name,
                Exchange(name, type="topic", durable=True),
                routing_key=name,
                durable=True,
                queue_arguments=dict(QUORUM),
            )
            for name in names
        ]

    def connect_node(self, node_url: str, timeout: float) -> amqp.Connection:
        """One attempt on one node (kombu's Connection would retry, sleeping between tries), every
        wait bounded: the TCP connect and AMQP handshake (connect_timeout), then each read and
        write on the socket (read_timeout, write_timeout)."""
        parts = parse_url(node_url)
        connection = amqp.Connection(
            host=f"{parts['hostname'] or '127.0.0.1'}:{parts['port'] or 5672}",
            userid=parts["userid"] or "guest",
            password=parts["password"] or "guest",
            virtual_host=parts["virtual_host"] or "/",
            ssl=node_url.startswith("amqps://"),
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
        )
        connection.connect()
        return connection

    def queue_depths(self, names: Sequence[str]) -> list[QueueDepth]:
        """Ready messages and consumers per queue, by passive declares on the first node that
        answers (every node of a cluster gives the same answer)."""
        errors = []
        for node_url in self.node_urls:
            try:
                return self._queue_depths_on(node_url, names)
            except (OSError, amqp.exceptions.AMQPError) as exc:
                errors.append(f"{_node_name(node_url)}: {type(exc).__name__}: {exc}")
        raise BrokerUnreachable("; ".join(errors) or "no RabbitMQ node in CELERY_BROKER_URL")

    def _queue_depths_on(self, node_url: str, names: Sequence[str]) -> list[QueueDepth]:
        depths = []
        with self.connect_node(node_url, READ_TIMEOUT_SECONDS) as connection:
            channel = connection.channel()
            for name in names:
                try:
                    _, depth, consumers = channel.queue_declare(queue=name, passive=True)
                except amqp.exceptions.NotFound:
                    # No worker has declared it yet: nothing waits in it. The 404 closed the channel.
                    depth, consumers = 0, 0
                    channel = connection.channel()
                depths.append(
                    QueueDepth(
                        name=name,
                        depth=depth,
                        oldest_age_seconds=None,
                        age_unknown=AGE_UNKNOWN if depth else "",
                        consumers=consumers,
                    )
                )
        return depths

    def ping(self, timeout: float) -> dict[str, Any]:
        """Every node at once; the broker answers if one node does (workers fail over to it)."""
        # Not a `with` block: leaving one would wait for a node that hangs. Each attempt is
        # bounded by its own timeouts, so an abandoned thread ends soon after.
        pool = ThreadPoolExecutor(max_workers=len(self.node_urls), thread_name_prefix="amqp-ping")
        futures = {_node_name(url): pool.submit(self._ping_node, url, timeout) for url in self.node_urls}
        pool.shutdown(wait=False)
        wait(futures.values(), timeout=timeout + 0.2)
        nodes = {name: _outcome(future) for name, future in futures.items()}
        if not any(outcome == "ok" for outcome in nodes.values()):
            raise BrokerUnreachable(f"no RabbitMQ node answered: {nodes}")
        return {"broker": "rabbitmq", "nodes": nodes}

    def _ping_node(self, node_url: str, timeout: float) -> None:
        # Connected means TCP, the AMQP handshake and the vhost's opening all answered.
        self.connect_node(node_url, timeout).close()

    def connection_options(self, timeout: float) -> dict[str, Any]:
        # connect_timeout bounds the TCP connect and the AMQP handshake of each node tried.
        return {"connect_timeout": timeout, "transport_options": {"confirm_publish": True}}

    def publish_options(self, timeout: float) -> dict[str, Any]:
        # A node under a memory or disk alarm accepts the publish and never confirms it. Celery
        # merges retry_policy over CELERY_TASK_PUBLISH_RETRY_POLICY; a caller's own policy (the
        # trigger API's, bounded to answer within 2 s) replaces this one.
        return {
            "timeout": timeout,
            "confirm_timeout": timeout,
            "retry_policy": {"max_retries": NACKED_PUBLISH_RETRIES, "errback": pause_after_refusal},
        }

    def delivery_count(self, task_id: str, retries: int, headers: dict[str, Any]) -> int:
        # A quorum queue counts every return of a message (a worker that died holding it, a
        # connection lost) in the x-delivery-count header of its next delivery.
        return int(headers.get("x-delivery-count") or 0)

    def delay_for_publish(
        self, countdown: float | None, eta: datetime | None, now: datetime
    ) -> tuple[float | None, datetime | None]:
        # Celery hands RabbitMQ int(countdown) seconds and raises for 0 < countdown < 1: a
        # sub-second wait (a short rate-limit deferral, an ETA just ahead) becomes one second.
        if eta is not None:
            if isinstance(eta, str):
                eta = datetime.fromisoformat(eta)
            seconds = (maybe_make_aware(eta) - maybe_make_aware(now)).total_seconds()
        else:
            seconds = countdown or 0
        if 0 < seconds < SHORTEST_DELAY_SECONDS:
            return SHORTEST_DELAY_SECONDS, None
        return countdown, eta


def _node_name(node_url: str) -> str:
    """A node's URL without its credentials."""
    return maybe_sanitize_url(node_url)


def _outcome(future) -> str:
    if not future.done():
        return "no answer in time"
    exc = future.exception()
    return "ok" if exc is None else f"{type(exc).__name__}: {exc}"[:200]


def pause_after_refusal(exc: BaseException, interval: float) -> None:
    """kombu's errback before each publish retry: after a refusal (a nack), wait for the queue's
    leader election. A non-zero `interval` is a reconnect, which kombu paces itself."""
    if not interval and isinstance(exc, amqp.exceptions.MessageNacked):
        time.sleep(NACK_PAUSE_SECONDS)
