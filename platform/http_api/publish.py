"""Publish an accepted job to the broker, or fail within about a second when the broker is down.

The Celery app's own producer pool uses the broker settings made for workers (a 5 s socket
timeout on Redis, a 1 s connect timeout per RabbitMQ node, publish retries): against a hung
broker one publish could take many seconds. The API publishes through a pool of its own whose
every wait is bounded by API_PUBLISH_TIMEOUT_SECONDS (the broker says how: socket timeouts on
Redis; connect and publisher-confirm timeouts on RabbitMQ, jobs/brokers/) and a single retry, so a
dead broker (connection refused) fails in milliseconds and a hung one (or a RabbitMQ node that
never confirms, under a memory alarm) in about 2 x API_PUBLISH_TIMEOUT_SECONDS; with several
RabbitMQ nodes the retry goes to the next one. The caller answers 503 well inside the contract's 2 s.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from amqp.exceptions import AMQPError
from kombu import Connection, pools
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from http_api import conf
from jobs.brokers import broker_for_url, current_broker
from jobs.celery_app import app

logger = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """The broker did not take the job (down, hung or refusing)."""


def publish_job(*, task_name: str, kwargs: dict[str, Any], job_id: str, countdown: int | None) -> None:
    """Send `task_name(**kwargs)` under `job_id`, routed by jobs/queues.py; BrokerUnavailable if not sent.

    By name (send_task), through this module's bounded producer pool; `kwargs` were validated
    against the task's whole argument model already (http_api/api.py, http_api/registry.py)."""
    timeout = conf.publish_timeout_seconds()
    broker = current_broker()
    connection = _pool_key(broker.url, timeout)
    try:
        # kombu keys its pools by connection parameters: one pool per process, reused.
        with pools.producers[connection].acquire(block=True, timeout=timeout) as producer:
            app.send_task(
                task_name,
                kwargs=kwargs,
                task_id=job_id,
                countdown=countdown or None,
                producer=producer,
                **{
                    **broker.publish_options(timeout),
                    # Ours, not the broker's default: the answer must come within 2 s.
                    "retry": True,
                    "retry_policy": {
                        "max_retries": 1,
                        "interval_start": 0,
                        "interval_step": 0.1,
                        "interval_max": 0.1,
                    },
                },
            )
    except (KombuError, RedisError, AMQPError, OSError, TimeoutError) as exc:
        logger.warning(
            "trigger API: broker unavailable for %s[%s]: %s", task_name, job_id, type(exc).__name__
        )
        raise BrokerUnavailable(str(exc)) from exc


@lru_cache(maxsize=8)
def _pool_key(url: str, timeout: float) -> Connection:
    """The connection (never itself connected) whose parameters key this process's producer pool.
    Built once: Celery reads a dozen settings to build one, a third of a publish's own time."""
    return app.connection_for_write(url, **broker_for_url(url).connection_options(timeout))
