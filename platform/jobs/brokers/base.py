"""What both broker implementations share: the Broker interface, its value types and errors."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from kombu import Queue as KombuQueue

# Stamped on every task message this platform publishes (jobs/operations/task_observability.py), so the age
# of the oldest waiting message can be read from a broker that lets us look at it (Redis).
PUBLISHED_AT_HEADER = "platform_published_at"

# Native delayed delivery routes a delayed message by 28 binary digits before its queue's routing
# key ("0.1.1. ... .default"); the delivery keeps that key (kombu/transport/native_delayed_delivery.py).
DELAY_PREFIX = re.compile(r"^(?:[01]\.){28}")


class BrokerUnreachable(ConnectionError):
    """The broker did not answer within the bound (down, hung, refusing us)."""


@dataclass(frozen=True)
class QueueDepth:
    name: str
    depth: int  # messages waiting to be handed to a worker (not those a worker holds)
    # How long the oldest waiting message has waited; None when the queue is empty or the age
    # cannot be known (then age_unknown says why).
    oldest_age_seconds: float | None
    age_unknown: str = ""
    consumers: int | None = None  # None: the broker does not say


class Broker(Protocol):
    kind: str  # "redis" | "rabbitmq"
    url: str

    def task_queues(self, names: Sequence[str]) -> list[KombuQueue]:
        """The platform's queues, declared as this broker needs them."""

    def queue_depths(self, names: Sequence[str]) -> list[QueueDepth]:
        """Depth (and oldest age where knowable) of each named queue, in bounded time."""

    def ping(self, timeout: float) -> dict[str, Any]:
        """Details of a broker that answered within `timeout`; BrokerUnreachable otherwise."""

    def connection_options(self, timeout: float) -> dict[str, Any]:
        """kwargs for app.connection_for_write(): a connection whose every wait is bounded by about
        `timeout` (the API's publish, control broadcasts from the web side)."""

    def publish_options(self, timeout: float) -> dict[str, Any]:
        """Extra send_task() kwargs that bound one publish by about `timeout`."""

    def delivery_count(self, task_id: str, retries: int, headers: dict[str, Any]) -> int:
        """How many times this message (one attempt of a job) has been handed to a worker before
        this delivery, for a delivery marked redelivered. Raises if it cannot be counted."""

    def delay_for_publish(
        self, countdown: float | None, eta: datetime | None, now: datetime
    ) -> tuple[float | None, datetime | None]:
        """The (countdown, eta) to publish a delayed job with: what this broker can wait for."""
