"""The fault-injection suite's figures: each scenario reports what it submitted, the faults it
injected and the effects it observed; the table is printed at the end of the run and written to
bench/results/faults.json (tests/support/fault_figures.py; `make faults` runs the suite on its own)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support import fault_figures as figures
from tests.support import redis_broker
from tests.support.processes import platform_env


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request, private_redis) -> str:
    """The broker every scenario publishes to and its workers consume from (CELERY_BROKER_URL):
    each scenario runs on a private redis-server of the test's own, and on RabbitMQ (the run's
    vhost, emptied first). REDIS_URL (the cache, locks, leases) stays on `private_redis` whatever
    the broker."""
    if request.param == "redis":
        return private_redis.url
    return request.getfixturevalue("rabbitmq").url


def is_redis(url: str) -> bool:
    return url.partition("://")[0] in ("redis", "rediss")


@dataclass
class FaultBroker:
    """The broker of one scenario: Redis, Redis with a key prefix (kombu's global_keyprefix, as a
    site sharing one Redis between apps sets it), or RabbitMQ."""

    kind: str
    url: str
    key_prefix: str = ""

    @property
    def is_redis(self) -> bool:
        return is_redis(self.url)

    def env(self, *, database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
        """A worker's (or app code's) environment on this broker; cache and locks on redis_url."""
        return platform_env(
            database_url=database_url,
            redis_url=redis_url,
            broker_url=self.url,
            CELERY_BROKER_KEY_PREFIX=self.key_prefix,
            **extra,
        )

    def holds_nothing(self, queues: list[str]) -> bool:
        """Redis only: nothing waiting in `queues` and nothing held unacknowledged."""
        return redis_broker.holds_nothing(self.url, queues, self.key_prefix)

    def held_task_ids(self) -> set[str]:
        return redis_broker.held_task_ids(self.url, self.key_prefix)


@pytest.fixture(params=["redis", "redis-prefixed", "rabbitmq"])
def fault_broker(request, private_redis) -> FaultBroker:
    """Like broker_url, plus a run on Redis with every broker key under a prefix."""
    if request.param == "rabbitmq":
        return FaultBroker("rabbitmq", request.getfixturevalue("rabbitmq").url)
    prefix = "shared-redis:" if request.param == "redis-prefixed" else ""
    return FaultBroker(request.param, private_redis.url, prefix)


@pytest.fixture
def fault_figures(request):
    """Call with submitted=, faults=, effects=, lost=, duplicated= (and a note) once per scenario."""

    def report(**observed) -> None:
        figures.record(request, **observed)

    return report
