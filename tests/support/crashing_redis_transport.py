"""Test-only: the platform's Redis transport, and kombu's stock one, with a consumer that SIGKILLs
itself at one named step of its consume path (CRASH_AT in the environment), the way a machine
dies: no cleanup, no restore at shutdown.

Run as a script: `python -m tests.support.crashing_redis_transport URL QUEUE [stock]` consumes QUEUE
with acknowledgements (as a Celery worker does) and dies at CRASH_AT; it prints "waiting" the first
time it blocks for a wake-up, so a test can publish then.
"""

from __future__ import annotations

import os
import signal
import sys

from kombu import Connection, Exchange, Queue
from kombu.transport import redis as kombu_redis

from jobs.brokers import redis_transport

# The steps of the platform's consume path, in order.
STEPS = (
    "woken",  # BLPOP returned a wake-up token; the take is not sent yet
    "taken-unread",  # the take script ran on the server; its reply is not read
    "read-undelivered",  # the reply is read; the message is not handed to the consumer yet
    "delivered-unappended",  # handed to kombu's callback, not yet in this process's QoS
    "held",  # held by the consumer (its task would run now), not acknowledged
)


def _crash(step: str) -> None:
    if os.environ.get("CRASH_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


class QoS(redis_transport.QoS):
    def append(self, message, delivery_tag):
        _crash("delivered-unappended")
        return super().append(message, delivery_tag)


class Channel(redis_transport.Channel):
    QoS = QoS
    _said_waiting = False

    def _brpop_start(self, timeout=None):
        if not self._hungry and not self._said_waiting:
            self._said_waiting = True
            print("waiting", flush=True)
        return super()._brpop_start(timeout)

    def _brpop_read(self, **options):
        if self._taking:
            _crash("taken-unread")
        return super()._brpop_read(**options)

    def _after_wait(self, token) -> None:
        if token:
            _crash("woken")
        super()._after_wait(token)

    def _taken(self, reply):
        taken = super()._taken(reply)
        _crash("read-undelivered")
        return taken


class Transport(redis_transport.Transport):
    Channel = Channel


class StockChannel(kombu_redis.Channel):
    """kombu's own transport, killed after BRPOP took the message off its list and before the
    reply was read: the instant celery/celery#7950 is about."""

    def _brpop_read(self, **options):
        _crash("taken-unread")
        return super()._brpop_read(**options)


class StockTransport(kombu_redis.Transport):
    Channel = StockChannel


def queue(name: str) -> Queue:
    return Queue(name, Exchange(name), name)


def consume(url: str, name: str, transport: str, transport_options: dict) -> None:
    def on_message(_body, _message) -> None:
        _crash("held")

    with Connection(url, transport=transport, transport_options=transport_options) as conn:
        with conn.Consumer(queue(name), callbacks=[on_message]):
            while True:
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    pass


if __name__ == "__main__":
    url, name = sys.argv[1], sys.argv[2]
    stock = len(sys.argv) > 3 and sys.argv[3] == "stock"
    kind = "StockTransport" if stock else "Transport"
    consume(url, name, f"{__name__}:{kind}", {"visibility_timeout": int(os.environ["VISIBILITY_TIMEOUT"])})
