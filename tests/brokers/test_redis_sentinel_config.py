"""Redis behind Sentinel (issue 21 item 3), piece by piece: the settings turn a sentinel:// REDIS_URL
and CELERY_BROKER_URL into django-redis's and kombu's Sentinel configuration (jobs/redis_urls.py is
the one place either URL is read), a bad one fails at start naming the setting, the platform's
clients follow the Sentinels to the master, and a publish waits for a replica. The failover itself,
end to end: tests/faults/test_redis_sentinel.py."""

from __future__ import annotations

import json
import logging
import signal

import pytest
from django.core.exceptions import ImproperlyConfigured
from kombu import Connection
from kombu import Queue as KombuQueue

from jobs.brokers.redis_broker import RedisBroker
from jobs.brokers.redis_transport import SentinelTransport
from jobs.operations.flower_broker import kombu_scheme
from jobs.redis_urls import parse_sentinel_url, redis_client
from tests.support.processes import (
    ManagedProcess,
    RedisServer,
    platform_env,
    redis_server_binary,
    run_django,
    wait_until,
)
from tests.support.redis_sentinel import MASTER_NAME, SentinelSet

SENTINELS = "sentinel://:s3cret@10.0.0.1:26379;sentinel://10.0.0.2;sentinel://10.0.0.3:26380/2"

READ_SETTINGS = """
import json
from django.conf import settings
from jobs.celery_app import app
connection = app.connection_for_write()
print(json.dumps({
    "cache": settings.CACHES["default"],
    "broker_url": settings.CELERY_BROKER_URL,
    "transport": settings.CELERY_BROKER_TRANSPORT,
    "options": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    "kombu": {
        "transport": connection.transport_cls,
        "alternates": connection.alt,
        "database": connection.virtual_host,
        "password": connection.password,
        "master_name": connection.transport_options.get("master_name"),
    },
}))
"""


def _settings_under(**environment: str) -> dict:
    env = platform_env(database_url="sqlite:///unused.sqlite3", redis_url=environment.pop("REDIS_URL"))
    env.pop("CELERY_BROKER_URL")  # defaults to REDIS_URL unless given
    env.update(environment)
    ran = run_django(READ_SETTINGS, env)
    assert ran.returncode == 0, ran.stderr[-2000:]
    return json.loads(ran.stdout.strip().splitlines()[-1])


def test_a_sentinel_redis_url_configures_the_cache_and_the_broker_through_the_sentinels():
    found = _settings_under(REDIS_URL=SENTINELS, REDIS_SENTINEL_MASTER="platform-redis")
    cache = found["cache"]
    assert cache["LOCATION"] == "redis://:s3cret@platform-redis/2"  # the master, by name, database 2
    assert cache["OPTIONS"]["CONNECTION_FACTORY"] == "django_redis.pool.SentinelConnectionFactory"
    assert cache["OPTIONS"]["SENTINELS"] == [["10.0.0.1", 26379], ["10.0.0.2", 26379], ["10.0.0.3", 26380]]
    assert (
        cache["OPTIONS"]["CLIENT_CLASS"] == "django_redis.client.DefaultClient"
    )  # reads from the master too
    assert cache["OPTIONS"]["IGNORE_EXCEPTIONS"] is True

    assert found["transport"] == "jobs.brokers.redis_transport:SentinelTransport"
    assert found["options"]["master_name"] == "platform-redis"
    assert found["options"]["publish_replicas"] == 1
    assert found["options"]["visibility_timeout"] == 60  # the rest as on one Redis
    # Every part spelled in full: kombu reads the database and the password from the first.
    assert found["broker_url"] == (
        "sentinel://:s3cret@10.0.0.1:26379/2;sentinel://:s3cret@10.0.0.2:26379/2;sentinel://:s3cret@10.0.0.3:26380/2"
    )
    kombu = found["kombu"]
    assert kombu["transport"] == "jobs.brokers.redis_transport:SentinelTransport"
    assert len(kombu["alternates"]) == 3
    assert (kombu["database"], kombu["password"], kombu["master_name"]) == ("2", "s3cret", "platform-redis")


def test_the_broker_may_be_another_sentinel_master_than_the_cache():
    found = _settings_under(
        REDIS_URL="redis://127.0.0.1:6379/0",
        CELERY_BROKER_URL="sentinel://10.0.0.1:26379;sentinel://10.0.0.2:26379",
        CELERY_BROKER_SENTINEL_MASTER="platform-broker",
    )
    assert found["cache"]["LOCATION"] == "redis://127.0.0.1:6379/0"
    assert "SENTINELS" not in found["cache"]["OPTIONS"]
    assert found["options"]["master_name"] == "platform-broker"
    assert found["broker_url"] == "sentinel://10.0.0.1:26379/0;sentinel://10.0.0.2:26379/0"


def test_a_plain_redis_url_is_configured_as_before():
    found = _settings_under(REDIS_URL="redis://127.0.0.1:6379/3")
    assert found["cache"]["LOCATION"] == found["broker_url"] == "redis://127.0.0.1:6379/3"
    assert "CONNECTION_FACTORY" not in found["cache"]["OPTIONS"]
    assert found["transport"] == "jobs.brokers.redis_transport:Transport"
    assert "master_name" not in found["options"] and "publish_replicas" not in found["options"]


def test_a_sentinel_url_without_its_master_name_fails_at_start_naming_the_setting():
    env = platform_env(database_url="sqlite:///unused.sqlite3", redis_url=SENTINELS)
    env.pop("REDIS_SENTINEL_MASTER", None)
    ran = run_django("", env)
    assert ran.returncode != 0
    assert "REDIS_URL names Redis Sentinels" in ran.stderr and "REDIS_SENTINEL_MASTER is empty" in ran.stderr


@pytest.mark.parametrize(
    ("url", "master", "says"),
    [
        ("sentinel://a:26379;redis://b:6379", "m", "every ';'-separated part must be sentinel://host:port"),
        ("sentinel://a:port", "m", "a Sentinel's port is not a number"),
        ("sentinel://a:26379/1;sentinel://b:26379/2", "m", "different database numbers"),
        ("sentinel://a:26379/zero", "m", "the database must be a number"),
        ("sentinel://:26379", "m", "names no host"),
        ("sentinel://a:26379", "My Master", "not a usable master name"),
    ],
)
def test_a_bad_sentinel_url_is_refused_naming_the_setting(url, master, says):
    with pytest.raises(ImproperlyConfigured) as refused:
        parse_sentinel_url(
            url, master, setting="CELERY_BROKER_URL", master_setting="CELERY_BROKER_SENTINEL_MASTER"
        )
    message = str(refused.value)
    assert says in message
    assert "CELERY_BROKER_URL" in message or "CELERY_BROKER_SENTINEL_MASTER" in message


def test_flower_reads_the_sentinel_transport_as_kombus_sentinel_scheme():
    assert kombu_scheme(SentinelTransport) == "sentinel"


@pytest.fixture
def sentinel_set():
    sentinels = SentinelSet().start()
    yield sentinels
    sentinels.stop()


def test_the_platforms_own_clients_reach_the_master_through_the_sentinels(sentinel_set):
    # The broker seam's client (queue depths, ping) and the ops client (REDIS_URL) ask the Sentinels.
    master = sentinel_set.client(sentinel_set.master_port)
    master.lpush("default", json.dumps({"headers": {"platform_published_at": 1.0}}))
    broker = RedisBroker(sentinel_set.url, master_name=MASTER_NAME)
    assert broker.ping(1.0) == {"broker": "redis"}
    assert broker.queue_depths(["default"])[0].depth == 1
    client = redis_client(sentinel_set.url, master_name=MASTER_NAME, timeout=0.5)
    assert client.connection_pool.get_master_address() == ("127.0.0.1", sentinel_set.master_port)


@pytest.fixture
def master_and_replica():
    master = RedisServer().start()
    replica = RedisServer()
    replica.process = ManagedProcess(
        [
            redis_server_binary(),
            "--port",
            str(replica.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            replica.dir,  # where a replica keeps the copy it syncs
            "--replicaof",
            "127.0.0.1",
            str(master.port),
        ],
        {},
        "replica",
    )
    wait_until(
        lambda: (
            SentinelSet.client(replica.port).info("replication").get("master_link_status") == "up"
            if replica.process.proc.poll() is None
            else True
        ),
        timeout=30,
        what="the replica to sync",
    )
    yield master, replica
    replica.process.proc.send_signal(signal.SIGCONT)
    replica.stop()
    master.stop()


def _publish(url: str, queue: str) -> None:
    options = {"publish_replicas": 1, "publish_replica_timeout": 0.5}
    with Connection(
        url, transport="jobs.brokers.redis_transport:Transport", transport_options=options
    ) as conn:
        conn.Producer().publish({"n": 1}, routing_key=queue, declare=[KombuQueue(queue, routing_key=queue)])


def test_a_publish_waits_for_a_replica_and_says_so_when_none_confirms(master_and_replica, caplog):
    master, replica = master_and_replica
    caplog.set_level(logging.WARNING, logger="jobs.brokers.redis_transport")
    _publish(master.url, "confirmed")
    assert SentinelSet.client(replica.port).llen("confirmed") == 1  # on the replica when publish returned
    assert "not confirmed" not in caplog.text

    replica.process.proc.send_signal(signal.SIGSTOP)  # a replica that stops answering
    _publish(master.url, "unconfirmed")
    assert SentinelSet.client(master.port).llen("unconfirmed") == 1  # published all the same
    assert "publish not confirmed by 1 replica(s) within 0.5s (0 did)" in caplog.text
    stats = SentinelSet.client(master.port).info("commandstats")
    assert stats["cmdstat_wait"]["calls"] == 2
