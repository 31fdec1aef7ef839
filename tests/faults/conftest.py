"""The fault-injection suite's figures: each scenario reports what it submitted, the faults it
injected and the effects it observed; the table is printed at the end of the run and written to
bench/results/faults.json (tests/support/fault_figures.py; `make faults` runs the suite on its own)."""

from __future__ import annotations

import pytest

from tests.support import fault_figures as figures


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


@pytest.fixture
def fault_figures(request):
    """Call with submitted=, faults=, effects=, lost=, duplicated= (and a note) once per scenario."""

    def report(**observed) -> None:
        figures.record(request, **observed)

    return report
