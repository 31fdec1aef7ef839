"""Fixtures for the operations tests: a private broker the web side reads (each test runs on
Redis and on RabbitMQ), a metrics directory, scraping /metrics into numbers, and real worker
subprocesses on that broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TestBroker
from tests.support.processes import ManagedProcess, start_worker


@pytest.fixture
def ops_broker(broker: TestBroker, settings) -> TestBroker:
    """The broker the web side (dashboard, /metrics) reads and controls: a private Redis, or the
    run's RabbitMQ vhost, so no other test's worker answers or consumes here; REDIS_URL (paused
    queues, beat's heartbeat) a private Redis too."""
    settings.CELERY_BROKER_URL = broker.url
    settings.REDIS_URL = broker.redis_url
    return broker


@pytest.fixture
def metrics_root(tmp_path, settings):
    """METRICS_DIR: worker subprocesses write their metric files below it."""
    root = tmp_path / "metrics"
    root.mkdir()
    settings.METRICS_DIR = str(root)
    return root


def scrape(client) -> dict[tuple[str, frozenset], float]:
    """GET /metrics, parsed: (sample name, labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.content[:500]
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def sample(samples: dict, name: str, default: float | None = 0.0, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())), default)


@pytest.fixture
def ops_workers(database_url, ops_broker) -> Iterator:
    """Start real `celery worker` subprocesses on the private broker; all stopped at the end."""
    started: list[ManagedProcess] = []

    def start(name: str, queues: str, **env: str) -> ManagedProcess:
        worker = start_worker(
            ops_broker.env(database_url=database_url, **env),
            name=name,
            queues=queues,
            concurrency=1,
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
