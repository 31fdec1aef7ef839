"""Poison messages go to a dead letter instead of vanishing into a log line.

Celery's worker acknowledges (drops) a message it cannot decode, one naming a task it does not
know, or one with malformed headers, and logs it. The platform's worker uses this consumer
(`worker_consumer` in tasks/app.py) to record each of them as a dead letter first, with what
could be read of it, so ops staff see them in admin; the queue keeps flowing either way.
"""

from __future__ import annotations

import logging
import uuid

from celery.worker.consumer import Consumer

from jobs.brokers.rabbitmq_delayed_delivery import with_cluster_delayed_delivery
from jobs.dead_letters import record_dead_letter

logger = logging.getLogger(__name__)

MAX_BODY_CHARS = 4000


class UndecodableMessage(Exception):
    """The message body could not be decoded (wrong content type, broken JSON...)."""


class UnknownTask(Exception):
    """The message names a task this platform does not have."""


class InvalidMessage(Exception):
    """The message's headers or body are not a valid task message."""


def _record(message, exc: Exception, *, kwargs: dict | None = None) -> None:

    headers = getattr(message, "headers", None) or {}
    try:
        raw = message.body
        body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        record_dead_letter(
            task_id=str(headers.get("id") or f"poison-{uuid.uuid4()}"),
            task_name=str(headers.get("task") or "(undecodable message)"),
            args=[],
            kwargs=kwargs or {},
            queue=(message.delivery_info or {}).get("routing_key") or "",
            exc=exc,
            traceback=f"content type: {message.content_type}\nbody:\n{body[:MAX_BODY_CHARS]}",
            attempts=1,
        )
    except Exception:  # never let bookkeeping stop the consumer
        logger.exception("could not record a poison message as a dead letter")


class PoisonAwareConsumer(Consumer):
    class Blueprint(Consumer.Blueprint):
        # Not about poison: this is the platform's one consumer class, and its steps are where
        # Celery's delayed-delivery set-up is swapped for one that treats a failover list as
        # one cluster (jobs/brokers/rabbitmq_delayed_delivery.py).
        default_steps = with_cluster_delayed_delivery(Consumer.Blueprint.default_steps)

    def on_decode_error(self, message, exc):
        _record(message, UndecodableMessage(f"{type(exc).__name__}: {exc}"))
        super().on_decode_error(message, exc)

    def on_unknown_task(self, body, message, exc):
        _record(message, UnknownTask(str(exc)), kwargs=_kwargs_of(body))
        super().on_unknown_task(body, message, exc)

    def on_invalid_task(self, body, message, exc):
        _record(message, InvalidMessage(str(exc)))
        super().on_invalid_task(body, message, exc)

    def on_unknown_message(self, body, message):
        _record(message, InvalidMessage("not a task message"))
        super().on_unknown_message(body, message)


def _kwargs_of(body) -> dict:
    # Protocol 2 bodies are (args, kwargs, embed); keep the kwargs so a replay is possible once
    # the task exists (a worker running an older release, say).
    try:
        return dict(body[1])
    except (TypeError, IndexError, KeyError, ValueError):
        return {}
