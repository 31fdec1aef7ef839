"""A job and its task-sent event go to a Redis broker in one round trip, and both arrive: the job
on its queue, the event (Flower's view, arguments masked or sealed) on the events channel
(platform/jobs/task_messages.py)."""

from __future__ import annotations

import base64
import json

import redis

from jobs.queues import Queue
from tasks.app import app
from tests.support.processes import wait_until


def _reads(client: redis.Redis) -> int:
    """Requests the server has read from all its clients (this INFO included)."""
    return int(client.info("stats")["total_reads_processed"])


def test_a_job_and_its_task_sent_event_are_one_round_trip_and_both_arrive(private_redis):
    client = redis.Redis.from_url(private_redis.url)
    events = client.pubsub()
    events.psubscribe("*celeryev/task.sent")
    wait_until(lambda: events.get_message(timeout=0.1), timeout=5, what="the subscription")
    kwargs = {"to": "+14165550123", "body": "Your car has shipped."}
    with app.connection_for_write(private_redis.url) as connection, connection.Producer() as producer:
        app.send_task("tasks.notifications.send_whatsapp_message", kwargs=kwargs, producer=producer)  # warm
        before = _reads(client)
        app.send_task(
            "tasks.notifications.send_whatsapp_message", kwargs=kwargs, producer=producer, task_id="job-2"
        )
        after = _reads(client)

    assert after - before == 2  # the job and its event together, plus the second INFO itself
    queued = [json.loads(raw)["headers"]["id"] for raw in client.lrange(Queue.NOTIFICATIONS.value, 0, -1)]
    assert "job-2" in queued
    sent = []
    wait_until(
        lambda: (
            sent.extend(m for m in [events.get_message(timeout=0.1)] if m and m["type"] == "pmessage")
            or len(sent) == 2
        ),
        timeout=5,
        what="two task-sent events",
    )
    event = json.loads(base64.b64decode(json.loads(sent[-1]["data"])["body"]))
    assert event["uuid"] == "job-2" and event["type"] == "task-sent"
    # Sealed arguments (jobs/sealing.py): shown as <sealed>, never the number.
    assert "+14165550123" not in event["kwargs"] and event["kwargs"] == "{'to': <sealed>, 'body': <sealed>}"
    events.close()
