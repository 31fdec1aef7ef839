"""The one seam between the job machinery and the broker CELERY_BROKER_URL names.

Celery speaks to either broker by itself. Everything the platform does with the broker beyond
Celery (declaring its queues, reading their depth and age, a bounded liveness check, a fail-fast
publish, the broker's own count of a message's deliveries) asks `current_broker()`, which
returns a `RedisBroker` (jobs/brokers/redis_broker.py) or a `RabbitMQBroker`
(jobs/brokers/rabbitmq_broker.py). Nothing else in the code branches on the broker URL; the
settings have a block per broker (config/settings/base.py), since that is configuration.

What is not the broker's lives elsewhere whatever the broker: paused queues, the beat lease and
heartbeat in PostgreSQL; the crash-loop counter, when the broker keeps none (Redis), in REDIS_URL.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from jobs.brokers.base import (
    DELAY_PREFIX,
    PUBLISHED_AT_HEADER,
    Broker,
    BrokerUnreachable,
    QueueDepth,
)
from jobs.brokers.rabbitmq_broker import RabbitMQBroker
from jobs.brokers.redis_broker import RedisBroker

__all__ = (
    "PUBLISHED_AT_HEADER",
    "Broker",
    "BrokerUnreachable",
    "QueueDepth",
    "broker_for_url",
    "current_broker",
    "is_rabbitmq_url",
    "queue_of_delivery",
)


def is_rabbitmq_url(url: str) -> bool:
    """True for a URL whose scheme names RabbitMQ (settings.RABBITMQ_URL_SCHEMES)."""
    return url.split("://", 1)[0] in settings.RABBITMQ_URL_SCHEMES


@lru_cache(maxsize=8)
def broker_for_url(url: str) -> Broker:
    if is_rabbitmq_url(url):
        return RabbitMQBroker(url)
    return RedisBroker(
        url, key_prefix=settings.CELERY_BROKER_KEY_PREFIX, master_name=settings.CELERY_BROKER_SENTINEL_MASTER
    )


def current_broker() -> Broker:
    """The broker settings.CELERY_BROKER_URL names (read now: tests point the web side elsewhere)."""
    return broker_for_url(settings.CELERY_BROKER_URL)


def queue_of_delivery(delivery_info: dict | None) -> str:
    """The platform queue a message was delivered from, whichever way it came (a delayed message
    carries the delay's routing prefix on RabbitMQ)."""
    routing_key = (delivery_info or {}).get("routing_key") or ""
    return DELAY_PREFIX.sub("", routing_key, count=1)
