"""Publish an accepted job to the broker, or fail within about a second when the broker is down.

The Celery app's own producer pool uses the broker transport options made for workers (a 5 s
socket timeout, publish retries): against a hung Redis one publish could take many seconds. The
API publishes through a pool of its own with short socket timeouts and a single retry, so a dead
Redis (connection refused) fails in milliseconds and a hung one in about 2 x
API_PUBLISH_TIMEOUT_SECONDS; the caller answers 503 well inside the contract's 2 s.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu import pools
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from http_api import conf
from jobs.celery_app import app

logger = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """The broker did not take the job (down, hung or refusing)."""


def publish_job(*, task_name: str, kwargs: dict[str, Any], job_id: str, countdown: int | None) -> None:
    """Send `task_name(**kwargs)` under `job_id`, routed by jobs/queues.py; BrokerUnavailable if not sent.

    By name (send_task): the API needs no import of the task modules."""
    timeout = conf.publish_timeout_seconds()
    connection = app.connection_for_write(
        transport_options={"socket_timeout": timeout, "socket_connect_timeout": timeout}
    )
    try:
        # kombu keys its pools by connection parameters: one pool per process, reused.
        with pools.producers[connection].acquire(block=True, timeout=timeout) as producer:
            app.send_task(
                task_name,
                kwargs=kwargs,
                task_id=job_id,
                countdown=countdown or None,
                producer=producer,
                retry=True,
                retry_policy={
                    "max_retries": 1,
                    "interval_start": 0,
                    "interval_step": 0.1,
                    "interval_max": 0.1,
                },
            )
    except (KombuError, RedisError, OSError, TimeoutError) as exc:
        logger.warning(
            "trigger API: broker unavailable for %s[%s]: %s", task_name, job_id, type(exc).__name__
        )
        raise BrokerUnavailable(str(exc)) from exc
    finally:
        connection.release()
