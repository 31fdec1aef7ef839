"""Fixtures shared by the whole suite: a real in-process worker, the test database's URL for
worker subprocesses, private Redis servers, a RabbitMQ vhost of the run's own (of each xdist
worker's own when the suite runs in parallel), the `broker` fixture that runs a test on each
broker, and a client that publishes to any broker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.worker.state import active_requests, reserved_requests
from django.db import connection
from redis.exceptions import RedisError

from http_api import bad_keys, ratelimit
from http_api import ratelimit as api_ratelimit
from integrations import ratelimit as integrations_ratelimit
from jobs.brokers import broker_for_url
from jobs.queues import QUEUE_NAMES
from tasks.app import app as platform_app

# Fake Twilio, Stripe, vehicle-history and FX servers (fixtures) for tests that call a provider.
from tests.support.fakes.fixtures import (  # noqa: F401
    fake_fx,
    fake_stripe,
    fake_twilio,
    fake_vehicle_history,
    short_timeouts,
)
from tests.support.processes import RedisServer, platform_env, wait_until
from tests.support.rabbitmq import SERVER_URL, RabbitMQVhost, rabbitmq_slot, rabbitmqctl, server_answers
from tests.support.two_factor import enrol_authenticator, log_in_to_admin

# One run at a time on a database and a Redis, how the suite runs in parallel (xdist groups,
# longest tests first), and the fault suite's figures, gathered from every xdist worker: hooks
# that must run in xdist's controller too.
pytest_plugins = ["tests.support.one_run_at_a_time", "tests.support.parallel", "tests.support.fault_figures"]


@pytest.fixture(scope="session", autouse=True)
def _this_workers_redis_database_starts_empty():
    """An xdist worker's Redis database (config/settings/test.py) is the run's own, but Redis keeps
    it after the run: an interrupted run leaves queued jobs, unacknowledged deliveries (which the
    next consumer restores and runs) and counters there. The run starts it empty, as it starts its
    test database. A run without xdist uses REDIS_URL as given and empties nothing."""
    if os.environ.get("TEST_REDIS_URL_WORKER"):
        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()


@pytest.fixture(scope="session")
def _live_worker_session(django_db_setup, django_db_blocker):
    """The in-process worker behind `live_worker`: started once per session (per xdist worker),
    consuming only while a test that uses it runs."""
    with start_worker(
        platform_app,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        _consume(worker, False)
        yield worker
    with django_db_blocker.unblock():
        _close_other_sessions()


@pytest.fixture
def live_worker(_live_worker_session, transactional_db):
    """A real worker (threads pool) in this process, consuming every platform queue from the
    Redis broker in REDIS_URL. Tests that use it need django_db(transaction=True), so that
    what they write is visible to the worker's own connections, and must wait for their jobs.

    It consumes during the test only, from queues emptied first: a job another test published
    (a test without a worker, whose job must stay PENDING) is not run here, nor in that test. At
    the end, before the test's tables are emptied, it stops consuming and waits until it has
    finished every job it took, result stored: a job's last writes must not land in the next test."""
    worker = _live_worker_session
    platform_app.control.purge()
    _consume(worker, True)
    yield worker
    _consume(worker, False)
    wait_until(
        lambda: not _jobs_in_hand(),
        timeout=60,
        what=lambda: f"the live worker to finish the jobs it holds: {_jobs_in_hand()}",
    )


def _consume(worker, on: bool) -> None:
    """Start or stop the worker's consumers of every platform queue (remote control commands,
    which the worker's consumer carries out in its own thread; each waits for its reply)."""
    command = platform_app.control.add_consumer if on else platform_app.control.cancel_consumer
    for queue in QUEUE_NAMES:
        replies = command(queue, destination=[worker.hostname], reply=True, timeout=10)
        assert replies, f"the live worker did not answer {command.__name__}({queue!r})"


def _jobs_in_hand() -> list[str]:
    """Jobs the in-process worker is running or holds (reserved, or waiting for an ETA)."""
    return sorted(f"{request.name}[{request.id}]" for request in {*active_requests, *reserved_requests})


def _close_other_sessions() -> None:
    # The worker's threads each kept a connection; the test database can't be dropped while
    # they are open.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture(autouse=True)
def _api_rate_limiter_backoff_ends_with_its_test():
    """The API's rate limiter stops asking a Redis it found down for a few seconds, process-wide
    (http_api/ratelimit.py). A test that stopped the cache's Redis (test_cache_down, the reports'
    redis_down) must not pass that on to the next test in its process: there the limiter would skip
    Redis, and with it the API keys' revocation generation (a revoked key answered 200)."""
    yield
    ratelimit._redis_down_until = 0.0


@pytest.fixture(autouse=True)
def _rate_limiter_backoff_ends_with_its_test():
    """A rate limiter that found Redis down stops asking it for a few seconds, process-wide
    (integrations/ratelimit.py Fallback). A test that stopped the cache's Redis must not pass that
    on to the next test in its process: the API limiter would skip Redis, and with it the API
    keys' revocation generation (a revoked key answered 200)."""
    yield
    for fallback in (api_ratelimit._fallback, integrations_ratelimit._fallback):
        fallback.down_until = 0.0


@pytest.fixture
def admin_client(client, admin_user):
    """pytest-django's admin_client, logged in as its admin_user (password "password") through
    admin's login form with both factors (tests/support/two_factor.py), as staff log in."""
    log_in_to_admin(
        client, username=admin_user.username, password="password", device=enrol_authenticator(admin_user)
    )
    return client


@pytest.fixture(autouse=True)
def _bad_api_keys_forgotten_after_each_test():
    """The trigger API counts bad keys per address in Redis (http_api/bad_keys.py), and every test
    client is 127.0.0.1: one test's bad keys must not slow the next test down."""
    yield
    try:
        ratelimit.reset(bad_keys.bucket("127.0.0.1"))
    except (RedisError, OSError):
        pass  # a test that stopped Redis: nothing was counted while it was down


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
    """A bare Celery client that publishes to `broker_url`, as another program would: with the
    platform's queue declarations (quorum queues on RabbitMQ) and publisher confirms there, so
    a message is in its queue when send_task returns."""
    broker = broker_for_url(broker_url)
    client = Celery("test-client", broker=broker_url)
    client.conf.update(
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        task_queues=broker.task_queues(QUEUE_NAMES),
        task_default_queue="default",
        broker_transport_options=broker.connection_options(5.0).get("transport_options", {}),
    )
    return client


@pytest.fixture(scope="session")
def rabbitmq_vhost():
    """A vhost of this run's own on the machine's RabbitMQ (tests/support/rabbitmq.py), deleted at
    the end. Its `.url` is an amqp:// broker URL."""
    if not server_answers():
        pytest.fail(
            f"RabbitMQ does not answer at {SERVER_URL} (start it: rabbitmq-server -detached)",
            pytrace=False,
        )
    vhost = RabbitMQVhost().create()
    yield vhost
    vhost.delete()


@pytest.fixture
def rabbitmq(rabbitmq_vhost):
    """The run's vhost with the platform's queues declared and empty, in one of the run's RabbitMQ
    slots (tests/support/rabbitmq.py): its queues are deleted at the test's end."""
    with rabbitmq_slot():
        rabbitmq_vhost.purge()
        rabbitmq_vhost.declare_queues()
        yield rabbitmq_vhost
        rabbitmq_vhost.delete_queues()


@dataclass
class TestBroker:
    """One broker for one test: `url` (CELERY_BROKER_URL) and `redis_url` (REDIS_URL, the cache,
    lock and lease store, a private Redis in both cases)."""

    kind: str
    url: str
    redis_url: str
    _redis: RedisServer
    _vhost: RabbitMQVhost | None = None
    _vhost_locked: bool = False

    __test__ = False  # not a test class, whatever its name

    def env(self, *, database_url: str, **extra: str) -> dict[str, str]:
        """The environment of a worker, beat or web subprocess on this broker."""
        return platform_env(database_url=database_url, redis_url=self.redis_url, broker_url=self.url, **extra)

    def stop(self) -> None:
        """Make the broker refuse us: the private Redis stops; on RabbitMQ the vhost's
        permissions are taken away (the machine's RabbitMQ keeps serving other tests)."""
        if self._vhost is None:
            self._redis.stop()
        else:
            rabbitmqctl("clear_permissions", "-p", self._vhost.name, "guest")
            self._vhost_locked = True

    def restore(self) -> None:
        if self._vhost is not None and self._vhost_locked:
            rabbitmqctl("set_permissions", "-p", self._vhost.name, "guest", ".*", ".*", ".*")
            self._vhost_locked = False


@pytest.fixture(params=["redis", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def broker(request, private_redis) -> Iterator[TestBroker]:
    """Runs the test once on a private Redis broker and once on RabbitMQ (the run's vhost)."""
    if request.param == "redis":
        yield TestBroker("redis", private_redis.url, private_redis.url, private_redis)
        return
    vhost = request.getfixturevalue("rabbitmq")
    broker = TestBroker("rabbitmq", vhost.url, private_redis.url, private_redis, vhost)
    yield broker
    broker.restore()  # a test that "stopped" RabbitMQ gives the run's vhost back


@pytest.fixture
def marker() -> str:
    """A unique name for this test's probe effects."""
    return uuid.uuid4().hex[:12]
