"""Fixtures for the RabbitMQ tests: the environment of a platform subprocess on the run's vhost."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.processes import platform_env


@pytest.fixture
def rabbit_env(database_url, rabbitmq, private_redis) -> Callable[..., dict[str, str]]:
    """env(**extra): a worker, beat or web subprocess with CELERY_BROKER_URL on the run's RabbitMQ
    vhost, REDIS_URL (cache, locks, leases) a private Redis; production timing settings unless
    `extra` says otherwise."""

    def env(**extra: str) -> dict[str, str]:
        return platform_env(
            database_url=database_url, redis_url=private_redis.url, broker_url=rabbitmq.url, **extra
        )

    return env
