"""Native delayed delivery set up once per RabbitMQ cluster, through the failover list.

Celery's DelayedDelivery consumer step (celery/worker/consumer/delayed_delivery.py) declares the
delay exchanges and queues and binds the platform's queues to them every time the worker's
consumer starts, which includes every reconnection. It treats each URL of a failover list (the
cluster's nodes, separated by ';') as a broker of its own and retries each one that does not
answer three times, sleeping 1, 3 and 5 s. With a cluster, the nodes share exchanges, queues and
bindings, so one node is enough; and when a node is down, the consumer would not start
consuming for about 15 s after every reconnection (measured by tests/brokers/
test_rabbitmq_cluster.py: no job ran for 17 s after the node leading the queues was killed).

This step does Celery's work once, on a connection that tries the list's nodes in order until
one answers, and retries the whole list as Celery retries one URL. With a single URL it does
exactly what Celery's does.
"""

from __future__ import annotations

from celery.worker.consumer.delayed_delivery import DelayedDelivery, logger
from kombu.exceptions import OperationalError
from kombu.transport.native_delayed_delivery import declare_native_delayed_delivery_exchanges_and_queues

CELERY_STEP = "celery.worker.consumer.delayed_delivery:DelayedDelivery"
PLATFORM_STEP = "jobs.brokers.rabbitmq_delayed_delivery:ClusterDelayedDelivery"


class ClusterDelayedDelivery(DelayedDelivery):
    def _validate_broker_urls(self, broker_urls) -> list[str]:
        # Celery's check (raises on an empty or malformed setting), then one entry: the whole
        # failover list, in its order (Celery's returns a set of separate URLs).
        super()._validate_broker_urls(broker_urls)
        if isinstance(broker_urls, str):
            return [broker_urls]
        return [";".join(broker_urls)]

    def _setup_delayed_delivery(self, c, broker_url: str) -> None:
        with c.app.connection_for_write(url=broker_url) as connection:
            try:
                # kombu moves on to the next node after each failure and sleeps only once it
                # has tried them all: this tries every node of the list once, without sleeping.
                connection.ensure_connection(max_retries=max(len(connection.alt) - 1, 0))
            except OperationalError as error:
                # No node answered: an OSError, which Celery's step retries (1, 3, 5 s).
                raise ConnectionError(str(error)) from error
            queue_type = c.app.conf.broker_native_delayed_delivery_queue_type
            try:
                declare_native_delayed_delivery_exchanges_and_queues(connection, queue_type)
                self._bind_queues(c.app, connection)
            except Exception as error:
                logger.warning("Failed to set up delayed delivery through %s: %s", connection.as_uri(), error)
                raise


def with_cluster_delayed_delivery(steps: list[str]) -> list[str]:
    """A consumer blueprint's steps with Celery's DelayedDelivery replaced by this one."""
    return [PLATFORM_STEP if step == CELERY_STEP else step for step in steps]
