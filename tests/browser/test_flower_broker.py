"""Ops staff watch queues in Flower: its Broker page lists every platform queue with its length,
on both brokers (docs/contract.md section 3, README "Flower").

Real Flower (`celery -A tasks flower`, the platform's environment and flowerconfig.py) and a real
worker on a private Redis broker, then on RabbitMQ (the run's vhost, lengths from the management
plugin). Flower learns the platform's queues from the worker it inspects; the worker then stops,
so what is published next waits in its queue: a backlog, what the page is for.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from jobs.queues import QUEUE_NAMES
from jobs.task_names import TaskName
from tests.browser.conftest import FLOWER_CREDENTIALS
from tests.browser.pages import flower_queue_lengths, open_flower_broker_page, reload_until

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
    pytest.mark.browser_context_args(
        http_credentials={"username": FLOWER_CREDENTIALS[0], "password": FLOWER_CREDENTIALS[1]}
    ),
]


def test_flower_broker_page_lists_every_platform_queue_with_its_length(page: Page, live_flower, broker):
    worker = live_flower.start_worker("flower-watched")
    watched = live_flower.known_worker("flower-watched")
    assert sorted(queue["name"] for queue in watched["active_queues"]) == sorted(QUEUE_NAMES)
    worker.stop()

    # A different length per queue: 1, 2, 3, ... jobs waiting.
    expected = {queue: str(count) for count, queue in enumerate(QUEUE_NAMES, start=1)}
    publisher = live_flower.publisher
    for queue, count in expected.items():
        for _ in range(int(count)):
            publisher.send_task(TaskName.NOOP, queue=queue)

    open_flower_broker_page(page, live_flower.root)
    expect(page.locator("#queue-table")).to_be_visible()
    # RabbitMQ's management API counts a queue's messages every few seconds
    # (collect_statistics_interval): reload until the page has caught up with the broker.
    reload_until(
        page,
        lambda page: flower_queue_lengths(page) == expected,
        timeout=60,
        what=lambda: f"Flower's Broker page to show {expected}, it shows {flower_queue_lengths(page)}",
    )
    if broker.kind == "redis":
        # The broker is shown as the Redis it is (password masked), not as the transport's class path.
        address = live_flower.broker.url.removeprefix("redis://")
        expect(page.locator(".broker-url")).to_have_text(f"redis://:**@{address}")
