"""Sealed arguments at rest, end to end (jobs/sealing.py, docs/security.md): after a bulk send, a
job that failed into a dead letter and a job the outbox relay published, run by a real `celery
worker` on a private Redis broker, no recipient's number and no message text is in clear in any
column of any table, in any key of the broker, or in any command the broker was sent (its bodies
base64-decoded); and Twilio still received each message in clear."""

from __future__ import annotations

import base64
import binascii
import json
import re
import socket
import threading

import pytest
import redis
from cryptography.fernet import Fernet
from django.db import connection

from jobs.models import DeadLetter, OutboxMessage
from messaging.models import BulkBatch, WhatsAppMessage
from tests.support.fakes.twilio import NO_WHATSAPP_NUMBER
from tests.support.processes import platform_env, run_django, start_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]

BULK_NUMBERS = ["+16475550141", "+16475550142", "+16475550143"]
OUTBOX_NUMBER = "+16475550144"
REFUSED_NUMBER = NO_WHATSAPP_NUMBER  # Twilio refuses it: the job fails into a dead letter
BODY = "Your Corolla left Halifax today"
OUTBOX_BODY = "Your invoice 2291 is due Friday"
# Each number as it would show in clear, with or without its "+1" (and so inside "whatsapp:+1...").
SECRETS = [n.removeprefix("+1") for n in (*BULK_NUMBERS, OUTBOX_NUMBER, REFUSED_NUMBER)] + [BODY, OUTBOX_BODY]


class RedisMonitor:
    """Every command a Redis server receives while it runs (Redis's MONITOR), as text."""

    def __init__(self, url: str) -> None:
        client = redis.Redis.from_url(url)
        kwargs = client.connection_pool.connection_kwargs
        self._socket = socket.create_connection((kwargs["host"], kwargs["port"]))
        self._socket.sendall(b"MONITOR\r\n")
        self._chunks: list[bytes] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while chunk := self._socket.recv(65536):
            self._chunks.append(chunk)

    def stop(self) -> str:
        self._socket.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=10)
        self._socket.close()
        return b"".join(self._chunks).decode("utf-8", "replace")


# A message body in Redis, in a key or in a monitored command (where its quotes are escaped).
_BODY = re.compile(r'body\\*"\s*:\s*\\*"([A-Za-z0-9+/=]{8,})')


def _with_bodies_decoded(text: str) -> str:
    decoded = []
    for body in _BODY.findall(text):
        try:
            decoded.append(base64.b64decode(body).decode("utf-8", "replace"))
        except (binascii.Error, ValueError):
            continue
    return "\n".join([text, *decoded])


def _redis_contents(url: str) -> str:
    """Every key of every database of the broker's server, with its value, as text."""
    lines = []
    for db in range(16):
        client = redis.Redis.from_url(url, db=db)
        for key in client.scan_iter(count=1000):
            kind = client.type(key).decode()
            if kind == "string":
                value = client.get(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "set":
                value = client.smembers(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            else:
                value = kind
            lines.append(f"{db} {key!r} {value!r}")
    return "\n".join(lines)


def _database_contents() -> str:
    """Every row of every table of the test database, each as its text (every column)."""
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        rows = []
        for table in tables:
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT t::text FROM {quoted} AS t")  # noqa: S608 -- a table name from the database's own catalogue, quoted
            rows += [f"{table}: {text}" for (text,) in cursor.fetchall()]
    return "\n".join(rows)


def _in_clear(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def test_no_number_or_text_rests_in_clear_after_a_bulk_send_a_dead_letter_and_an_outbox_relay(
    database_url, private_redis, fake_twilio, settings
):
    assert connection.vendor == "postgresql", "this test reads rows as PostgreSQL text"
    key = Fernet.generate_key().decode()
    settings.SEALED_ARGUMENT_KEYS = [key]  # the test reads rows with the workers' key
    env = platform_env(
        database_url=database_url,
        redis_url=private_redis.url,
        SEALED_ARGUMENT_KEYS=key,
        OUTBOX_PUBLISH_GRACE_SECONDS="0",
        **fake_twilio.settings(),
    )
    monitor = RedisMonitor(private_redis.url)

    # An outbox row whose process died between commit and publish: only the relay publishes it.
    died = run_django(
        "import os\nfrom django.db import transaction\nfrom jobs.outbox import enqueue_durably\n"
        "with transaction.atomic():\n"
        "    transaction.on_commit(lambda: os._exit(9))\n"
        "    enqueue_durably('tasks.notifications.send_whatsapp_message', "
        f"to={OUTBOX_NUMBER!r}, body={OUTBOX_BODY!r})\n",
        env,
    )
    assert died.returncode == 9, died.stderr
    outbox_row = OutboxMessage.objects.get()
    assert outbox_row.published_at is None

    worker = start_worker(env, name="sealed", concurrency=2)
    try:
        published = run_django(
            "import json\n"
            "from jobs.outbox import relay_outbox\n"
            "from tasks.notifications import send_bulk_whatsapp_notifications, send_whatsapp_message\n"
            "relayed = relay_outbox()\n"
            f"bulk = send_bulk_whatsapp_notifications.delay(recipients={BULK_NUMBERS!r}, body={BODY!r})\n"
            f"failing = send_whatsapp_message.delay(to={REFUSED_NUMBER!r}, body={BODY!r})\n"
            "print(json.dumps({'relayed': relayed, 'bulk': bulk.id, 'failing': failing.id}))\n",
            env,
        )
        assert published.returncode == 0, published.stderr
        ids = json.loads(published.stdout.strip().splitlines()[-1])
        assert ids["relayed"]["published"] == 1

        wait_until(
            lambda: BulkBatch.objects.filter(job_id=ids["bulk"], state=BulkBatch.State.DONE).exists(),
            timeout=60,
            what=f"the bulk send to finish\n{worker.tail()}",
        )
        wait_until(
            lambda: DeadLetter.objects.filter(task_id=ids["failing"]).exists(),
            timeout=60,
            what=f"the refused job's dead letter\n{worker.tail()}",
        )
        wait_until(
            lambda: OutboxMessage.objects.filter(pk=outbox_row.pk, outcome="SUCCESS").exists(),
            timeout=60,
            what=f"the relayed job to complete\n{worker.tail()}",
        )
    finally:
        worker.stop()
    broker_commands = monitor.stop()

    # Twilio got every message in clear: the worker opened what was sealed.
    received = {(r.form["To"], r.form.get("Body")) for r in fake_twilio.sent()}
    expected = {(f"whatsapp:{n}", BODY) for n in BULK_NUMBERS}
    assert received >= expected | {(f"whatsapp:{OUTBOX_NUMBER}", OUTBOX_BODY)}
    assert (f"whatsapp:{REFUSED_NUMBER}", BODY) in received
    # The rows read back in clear through their model.
    assert (
        sorted(WhatsAppMessage.objects.filter(scope=ids["bulk"]).values_list("to", flat=True)) == BULK_NUMBERS
    )

    assert "LPUSH" in broker_commands.upper() or "EVALSHA" in broker_commands.upper()
    assert _BODY.search(broker_commands), "no message body was seen: this test would prove nothing"
    assert _in_clear(_with_bodies_decoded(broker_commands)) == []
    assert _in_clear(_with_bodies_decoded(_redis_contents(private_redis.url))) == []
    database = _database_contents()
    assert "messaging_whatsappmessage" in database and "jobs_deadletter" in database
    assert _in_clear(database) == []
