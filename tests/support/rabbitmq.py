"""The machine's RabbitMQ for tests: a virtual host of this run's own, made with rabbitmqctl and
deleted at the end, and the means to empty it between tests.

RabbitMQ listens on 127.0.0.1:5672 with guest/guest (CI starts it: .ci/run). RABBITMQ_URL names
another server (its vhost part is replaced). A RabbitMQ that does not answer fails the RabbitMQ
tests; they never skip.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import amqp
import kombu

from jobs.brokers.rabbitmq_broker import RabbitMQBroker
from jobs.queues import QUEUE_NAMES

SERVER_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
# kombu's native delayed delivery: 28 delay levels (kombu/transport/native_delayed_delivery.py).
DELAY_QUEUES = [f"celery_delayed_{level}" for level in range(28)]


class RabbitMQUnavailable(RuntimeError):
    pass


def rabbitmqctl(*args: str, timeout: float = 60) -> str:
    binary = shutil.which("rabbitmqctl")
    if binary is None:
        raise RabbitMQUnavailable("rabbitmqctl is not installed (apt-get install rabbitmq-server)")
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        said = done.stderr.strip() or done.stdout.strip()
        raise RabbitMQUnavailable(f"rabbitmqctl {' '.join(args)}: {said}")
    return done.stdout


def server_answers(url: str = SERVER_URL) -> bool:
    try:
        RabbitMQBroker(url).ping(2.0)
    except ConnectionError:
        return False
    return True


class RabbitMQVhost:
    """A vhost of its own on the machine's RabbitMQ, for guest."""

    def __init__(self, prefix: str = "platform-test") -> None:
        self.name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.url = f"{SERVER_URL.rstrip('/')}/{quote(self.name, safe='')}"

    def create(self) -> RabbitMQVhost:
        rabbitmqctl("add_vhost", self.name)
        rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        return self

    def delete(self) -> None:
        rabbitmqctl("delete_vhost", self.name)

    def connect(self, timeout: float = 5.0) -> amqp.Connection:
        return RabbitMQBroker(self.url).connect_node(self.url, timeout)

    def purge(self) -> None:
        """Empty the platform's queues and the delay queues: what one test left there (a job a
        killed worker held, a countdown still waiting) must not reach the next one."""
        with self.connect() as connection:
            channel = connection.channel()
            for name in [*QUEUE_NAMES, *DELAY_QUEUES]:
                try:
                    channel.queue_purge(name)
                except amqp.exceptions.NotFound:
                    channel = connection.channel()  # not declared yet; the 404 closed the channel

    def declare_queues(self) -> None:
        """The platform's queues as a deployed platform has them (its workers declare them at
        start, with the broker's arguments: jobs/brokers/rabbitmq_broker.py `task_queues`), so a
        test that publishes before it starts a worker finds them, whatever ran before it."""
        with kombu.Connection(self.url, connect_timeout=5) as connection:
            channel = connection.default_channel
            for queue in RabbitMQBroker(self.url).task_queues(QUEUE_NAMES):
                queue(channel).declare()

    def delete_queues(self) -> None:
        """Delete the platform's queues and the delay queues: a quorum queue holds about three of
        RabbitMQ's file handles while it exists (one with a message: 33 queues, ~100 handles),
        and the machine's RabbitMQ has 927, so an idle vhost must hold none (`rabbitmq_slot`)."""
        with self.connect() as connection:
            channel = connection.channel()
            for name in [*QUEUE_NAMES, *DELAY_QUEUES]:
                try:
                    channel.queue_delete(name)
                except amqp.exceptions.NotFound:
                    channel = connection.channel()

    def listed(self, what: str, *columns: str) -> dict[str, list[str]]:
        """rabbitmqctl list_<what> for this vhost: first column -> the other columns."""
        out = rabbitmqctl(f"list_{what}", "-p", self.name, "--no-table-headers", "--quiet", *columns)
        rows = [line.split("\t") for line in out.splitlines() if line.strip()]
        return {row[0]: row[1:] for row in rows}


# RabbitMQ tests running at once, across the run's xdist workers: each holds its vhost's 33
# quorum queues (about 100 of RabbitMQ's file handles) while it runs, and deletes them at its
# end; this many fit the machine's RabbitMQ (927 handles, its sockets included) with room.
RABBITMQ_TEST_SLOTS = int(os.environ.get("RABBITMQ_TEST_SLOTS", "7"))


@contextlib.contextmanager
def rabbitmq_slot() -> Iterator[None]:
    """One of RABBITMQ_TEST_SLOTS, shared by the run's xdist workers (a lock file each, in a
    directory named after the run); waits for a free one."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", f"pid{os.getpid()}")
    directory = Path(tempfile.gettempdir()) / f"platform-rabbitmq-slots-{run}"
    directory.mkdir(exist_ok=True)
    while True:
        for slot in range(RABBITMQ_TEST_SLOTS):
            handle = open(directory / f"slot-{slot}", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        time.sleep(0.2)
