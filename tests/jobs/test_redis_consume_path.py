"""The Redis consume path has no window (jobs/brokers/redis_transport.py): a consumer SIGKILLed at
any step of taking a message leaves that message in its queue or in the unacknowledged record,
and it comes back, once, within the production visibility timeout and sweep. kombu's stock
transport, killed at the same instant, loses it (celery/celery#7950)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings
from kombu import Connection

from jobs.brokers.redis_transport import WAKE_KEY
from tests.support import redis_broker
from tests.support.crashing_redis_transport import STEPS, queue
from tests.support.processes import ROOT, ManagedProcess, platform_env, wait_until

pytestmark = pytest.mark.processes

OPTIONS = settings.CELERY_BROKER_TRANSPORT_OPTIONS
TIMEOUT = settings.CELERY_BROKER_VISIBILITY_TIMEOUT
# A dead consumer's message is back once its record is a visibility timeout old and a sweep ran.
REDELIVERY_BOUND = TIMEOUT + OPTIONS["unacked_restore_interval"] + 10
TRANSPORT = "jobs.brokers.redis_transport:Transport"


def _victim(url: str, name: str, step: str, *, stock: bool = False) -> ManagedProcess:
    env = dict(os.environ)
    env.update(
        CRASH_AT=step,
        VISIBILITY_TIMEOUT=str(TIMEOUT),
        PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'platform'}",
        PYTHONUNBUFFERED="1",
    )
    argv = [sys.executable, "-m", "tests.support.crashing_redis_transport", url, name]
    return ManagedProcess([*argv, "stock"] if stock else argv, env, f"victim-{step}")


def _publish(url: str, name: str, body: dict, transport: str = TRANSPORT) -> None:
    with Connection(url, transport=transport) as conn:
        conn.Producer().publish(body, exchange=queue(name).exchange, routing_key=name, declare=[queue(name)])


def _where(url: str, name: str, step: str) -> str:
    """'queued', 'held' (in the unacknowledged record) or 'nowhere'."""
    client = redis.Redis.from_url(url)
    if any(json.loads(raw)["body"] for raw in client.lrange(name, 0, -1)):
        return "queued"
    held = redis_broker.held_messages(url)
    if any(m["properties"]["delivery_info"]["routing_key"] == name for m in held):
        return "held"
    return "nowhere"


def _kill_at(url: str, step: str, *, stock: bool = False) -> ManagedProcess:
    """A consumer of its own queue, dead at `step` with that queue's one message in hand."""
    name = f"{'stock-' if stock else ''}step-{step}"
    if step == "woken":
        victim = _victim(url, name, step, stock=stock)
        wait_until(lambda: victim.saw("waiting"), timeout=30, what=victim.tail)
        _publish(url, name, {"step": step})
    else:
        _publish(url, name, {"step": step})
        victim = _victim(url, name, step, stock=stock)
    victim.proc.wait(30)
    assert victim.proc.returncode == -9, victim.tail()
    return victim


def test_a_consumer_killed_at_any_step_of_the_consume_path_loses_nothing(private_redis):
    url = private_redis.url
    for step in STEPS:
        _kill_at(url, step)
    # The invariant, right after each death: the message is in its queue or in the record.
    where = {step: _where(url, f"step-{step}", step) for step in STEPS}
    assert where == {
        "woken": "queued",  # only the token was lost
        "taken-unread": "held",
        "read-undelivered": "held",
        "delivered-unappended": "held",
        "held": "held",
    }

    # A live consumer with the production settings gets every one back, once.
    received: list[tuple[dict, bool]] = []
    started = time.monotonic()
    with Connection(url, transport=TRANSPORT, transport_options=OPTIONS) as conn:
        queues = [queue(f"step-{step}") for step in STEPS]

        def on_message(body, message) -> None:
            received.append((body, message.delivery_info.get("redelivered", False)))
            message.ack()

        with conn.Consumer(queues, callbacks=[on_message]):
            while len(received) < len(STEPS) and time.monotonic() - started < REDELIVERY_BOUND:
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    pass
            # A moment more: nothing arrives twice.
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=0.5)
                except TimeoutError:
                    pass
    steps = sorted(body["step"] for body, _ in received)
    assert steps == sorted(STEPS)
    redelivered = {body["step"] for body, flag in received if flag}
    assert redelivered == set(STEPS) - {"woken"}
    assert redis_broker.holds_nothing(url, [f"step-{step}" for step in STEPS])
    back = time.monotonic() - started
    print(f"\nconsume path: {len(STEPS)} consumers killed, one per step; all back in {back:.0f}s")


def test_kombus_stock_transport_killed_between_brpop_and_its_record_loses_the_message(private_redis):
    # What the transport closes: the same kill on kombu's own transport leaves the message
    # nowhere in Redis, so no sweep can ever bring it back.
    _kill_at(private_redis.url, "taken-unread", stock=True)
    assert _where(private_redis.url, "stock-step-taken-unread", "taken-unread") == "nowhere"


def test_a_message_published_without_a_wake_up_is_taken_within_the_poll_interval(private_redis):
    # Stock kombu (another program, an old publisher) pushes no wake-up token.
    url = private_redis.url
    received = []
    with Connection(url, transport=TRANSPORT, transport_options=OPTIONS) as conn:
        with conn.Consumer(queue("silent"), callbacks=[lambda body, m: (received.append(body), m.ack())]):
            for _ in range(3):  # the consumer finds nothing and waits on its wake-up list
                try:
                    conn.drain_events(timeout=0.3)
                except TimeoutError:
                    pass
            _publish(url, "silent", {"n": 1}, transport="redis")
            assert not redis.Redis.from_url(url).exists(WAKE_KEY.format(queue="silent"))
            published = time.monotonic()
            while not received and time.monotonic() - published < 5:
                try:
                    conn.drain_events(timeout=0.2)
                except TimeoutError:
                    pass
            waited = time.monotonic() - published
    assert received == [{"n": 1}]
    assert waited < conn.transport.brpop_timeout + 0.5


def test_a_restored_message_gets_a_new_tag_so_a_late_ack_of_the_old_one_removes_nothing(private_redis):
    url = private_redis.url
    client = redis.Redis.from_url(url)
    _publish(url, "retagged", {"n": 1})
    with (
        Connection(url, transport=TRANSPORT, transport_options=OPTIONS) as frozen,
        Connection(url, transport=TRANSPORT, transport_options=OPTIONS) as alive,
    ):
        first = frozen.SimpleQueue(queue("retagged")).get(timeout=5)
        # Its holder stopped vouching (frozen) for a visibility timeout: a sweep restores it.
        client.zadd("unacked_index", {first.delivery_tag: time.time() - TIMEOUT - 1})
        alive.default_channel.qos.restore_visible(num=10, interval=1)
        second = alive.SimpleQueue(queue("retagged")).get(timeout=5)
        assert second.payload == {"n": 1} and second.delivery_tag != first.delivery_tag
        first.ack()  # the frozen holder wakes up and acknowledges its old delivery
        assert client.hexists("unacked", second.delivery_tag)  # the new holder's record stands
        second.ack()
    assert redis_broker.holds_nothing(url, ["retagged"])


def test_with_a_global_keyprefix_the_sweep_leaves_a_refreshed_message_alone(private_redis):
    # kombu does not prefix ZSCORE: a sweep reading the unprefixed index would see no score and
    # restore a message its holder had just refreshed (it would then run twice).
    url = private_redis.url
    options = {**OPTIONS, "global_keyprefix": "shared:"}
    client = redis.Redis.from_url(url)
    _publish_prefixed = Connection(url, transport=TRANSPORT, transport_options=options)
    with _publish_prefixed as conn:
        conn.SimpleQueue(queue("prefixed")).put({"n": 1})
        message = conn.SimpleQueue(queue("prefixed")).get(timeout=5)
        assert client.hexists("shared:unacked", message.delivery_tag)
        qos = conn.default_channel.qos
        qos.restore_if_still_stale(message.delivery_tag)  # scored now: alive, left alone
        assert client.hexists("shared:unacked", message.delivery_tag)
        assert client.llen("shared:prefixed") == 0
        client.zadd("shared:unacked_index", {message.delivery_tag: time.time() - TIMEOUT - 1})
        qos.restore_if_still_stale(message.delivery_tag)  # stale: restored, under the prefix
        assert not client.hexists("shared:unacked", message.delivery_tag)
        assert client.llen("shared:prefixed") == 1


def test_priorities_are_taken_highest_first_as_kombu_orders_them(private_redis):
    url = private_redis.url
    with Connection(url, transport=TRANSPORT, transport_options=OPTIONS) as conn:
        producer = conn.Producer()
        for priority in (9, 6, 3, 0):  # kombu on Redis: 0 is the highest
            producer.publish(
                {"priority": priority},
                exchange=queue("prioritised").exchange,
                routing_key="prioritised",
                declare=[queue("prioritised")],
                priority=priority,
            )
        received = []

        def on_message(body, message) -> None:
            received.append(body)
            message.ack()

        with conn.Consumer(queue("prioritised"), callbacks=[on_message]):
            while len(received) < 4:
                conn.drain_events(timeout=5)
    assert [body["priority"] for body in received] == [0, 3, 6, 9]


def test_celery_purge_empties_the_platform_queues_and_their_wake_up_lists(private_redis):
    url = private_redis.url
    client = redis.Redis.from_url(url)
    for name in ("default", "notifications"):
        _publish(url, name, {"n": 1})
    assert client.exists(WAKE_KEY.format(queue="default"))
    purged = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks", "purge", "-f"],
        cwd=ROOT,
        env=platform_env(database_url="sqlite://", redis_url=url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert purged.returncode == 0, purged.stderr[-2000:]
    assert "Purged 2 messages" in purged.stdout, purged.stdout
    assert client.llen("default") == client.llen("notifications") == 0
    assert not client.exists(WAKE_KEY.format(queue="default"), WAKE_KEY.format(queue="notifications"))
