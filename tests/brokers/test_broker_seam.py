"""One seam chooses per broker (platform/jobs/brokers/); what is not the broker's lives in
REDIS_URL whatever the broker is: paused queues and beat's lease, even with a Redis broker of its
own."""

from __future__ import annotations

import re

import pytest
import redis

from jobs.brokers import current_broker
from jobs.brokers.rabbitmq_broker import RabbitMQBroker
from jobs.brokers.redis_broker import RedisBroker
from jobs.models import PausedQueue
from jobs.operations import queue_ops
from jobs.schedules.models import BeatLease
from jobs.schedules.scheduler import LEASE_NAME, read_beat_heartbeat
from tests.support.processes import ROOT, RedisServer, platform_env, start_beat, wait_until

SEAM = ROOT / "platform" / "jobs" / "brokers"
SETTINGS = ROOT / "platform" / "config" / "settings"
# Reading the broker URL, or telling brokers apart by it: only the seam and the settings may.
BRANCHES_ON_THE_URL = re.compile(
    r"CELERY_BROKER_URL\b.*\b(startswith|split|in)\b|amqp://|redis\.Redis\.from_url\(settings\.CELERY_BROKER_URL"
)


def test_nothing_outside_the_seam_and_the_settings_branches_on_the_broker_url():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in (ROOT / "platform").rglob("*.py")
        if SEAM not in path.parents and SETTINGS not in path.parents
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if BRANCHES_ON_THE_URL.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []


def test_the_seam_chooses_the_broker_by_the_url(settings):
    settings.CELERY_BROKER_URL = "amqp://guest:guest@mq1:5672/platform;amqp://guest:guest@mq2:5672/platform"
    rabbit = current_broker()
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/1"
    assert isinstance(rabbit, RabbitMQBroker) and rabbit.node_urls[1].startswith("amqp://guest:guest@mq2")
    assert isinstance(current_broker(), RedisBroker)


@pytest.fixture
def two_redises():
    broker, store = RedisServer().start(), RedisServer().start()
    yield broker, store
    broker.stop()
    store.stop()


@pytest.mark.django_db
def test_paused_queues_live_in_postgresql_not_in_any_redis(settings, two_redises):
    broker, store = two_redises
    settings.CELERY_BROKER_URL, settings.REDIS_URL = broker.url, store.url

    queue_ops.pause_queue(queue="reports")  # no worker answers: paused all the same

    assert list(PausedQueue.objects.values_list("name", flat=True)) == ["reports"]
    assert not redis.Redis.from_url(store.url).keys("platform:ops:paused*")
    assert not redis.Redis.from_url(broker.url).keys("platform:ops:paused*")
    assert {queue.name: queue.paused for queue in queue_ops.queue_stats()}["reports"] is True


@pytest.mark.processes
def test_beat_holds_its_lease_in_postgresql_not_in_any_redis(database_url, two_redises):
    broker, store = two_redises
    beat = start_beat(
        platform_env(database_url=database_url, redis_url=store.url, broker_url=broker.url), name="beat"
    )
    try:
        wait_until(
            lambda: read_beat_heartbeat(),
            timeout=30,
            what=lambda: f"beat's heartbeat\n{beat.tail()}",
        )
        assert BeatLease.objects.get(name=LEASE_NAME).holder == read_beat_heartbeat()["identity"]
    finally:
        beat.stop()
    assert not redis.Redis.from_url(broker.url).keys("platform:beat:*")
    assert not redis.Redis.from_url(store.url).keys("platform:beat:*")
