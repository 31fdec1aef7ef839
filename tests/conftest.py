"""Fixtures shared by the whole suite: a real in-process worker, the test database's URL for
worker subprocesses, private Redis servers, and a client that publishes to any broker."""

from __future__ import annotations

import uuid

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from django.db import connection

from tasks.app import app as platform_app

# Fake Twilio, Stripe, vehicle-history and FX servers (fixtures) for tests that call a provider.
from tests.support.fakes.fixtures import (  # noqa: F401
    fake_fx,
    fake_stripe,
    fake_twilio,
    fake_vehicle_history,
    short_timeouts,
)
from tests.support.processes import RedisServer


@pytest.fixture(scope="session")
def live_worker(django_db_setup, django_db_blocker):
    """A real worker (threads pool) in this process, consuming every platform queue from the
    Redis broker in REDIS_URL. Tests that use it need django_db(transaction=True), so that
    what they write is visible to the worker's own connections, and must wait for their jobs."""
    with django_db_blocker.unblock():
        platform_app.control.purge()
    with start_worker(
        platform_app,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        yield worker
    with django_db_blocker.unblock():
        _close_other_sessions()


def _close_other_sessions() -> None:
    # The worker's threads each kept a connection; the test database can't be dropped while
    # they are open.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture
def database_url(transactional_db) -> str:
    """The test database as a DATABASE_URL, for worker and beat subprocesses."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{host}:{port}/{s['NAME']}"


@pytest.fixture
def private_redis():
    """A disposable redis-server of this test's own (kill it, restart it)."""
    server = RedisServer().start()
    yield server
    server.stop()


def broker_client(broker_url: str) -> Celery:
    """A bare Celery client that publishes to `broker_url`, as another program would."""
    client = Celery("test-client", broker=broker_url)
    client.conf.update(
        task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True
    )
    return client


@pytest.fixture
def marker() -> str:
    """A unique name for this test's probe effects."""
    return uuid.uuid4().hex[:12]
