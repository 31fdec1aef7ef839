"""The RabbitMQ server settings the platform ships (ops/rabbitmq/) agree with its task limits."""

from __future__ import annotations

import re

from django.conf import settings

from config.settings.base import rabbitmq_management_api
from jobs.celery_app import app
from jobs.queues import QUEUE_NAMES
from tests.support.processes import ROOT

CONF = ROOT / "ops" / "rabbitmq" / "rabbitmq.conf"
PLUGINS = ROOT / "ops" / "rabbitmq" / "enabled_plugins"


def _longest_hard_time_limit() -> float:
    app.loader.import_default_modules()
    limits = [
        task.time_limit or app.conf.task_time_limit
        for task in app.tasks.values()
        if task.name.startswith("tasks.")
    ]
    return max(limits)


def test_consumer_timeout_outlasts_every_wait_of_an_unacknowledged_job():
    # A delivery not acknowledged within consumer_timeout closes its channel and is redelivered:
    # a job still running would run twice. A job is acknowledged once it finished (acks_late);
    # a worker consuming every queue may hold one per queue behind the one it runs; with native
    # delayed delivery no countdown waits unacknowledged in a worker.
    (configured,) = re.findall(r"^consumer_timeout\s*=\s*(\d+)\s*$", CONF.read_text(), re.M)
    assert int(configured) == settings.RABBITMQ_CONSUMER_TIMEOUT_SECONDS * 1000
    longest = _longest_hard_time_limit()
    assert longest >= 600
    assert settings.RABBITMQ_CONSUMER_TIMEOUT_SECONDS > len(QUEUE_NAMES) * longest


def test_the_management_plugin_is_enabled_for_flowers_broker_page():
    # An Erlang list of plugin names, read by every node at start (/etc/rabbitmq/enabled_plugins).
    (plugins,) = re.findall(r"^\[(.*)\]\.\s*$", PLUGINS.read_text(), re.M)
    assert "rabbitmq_management" in [name.strip() for name in plugins.split(",")]


def test_flowers_management_api_defaults_to_the_first_broker_node_as_the_broker_user():
    nodes = "amqp://platform:p%40ss@mq1:5672/platform;amqp://platform:p%40ss@mq2:5672/platform"
    assert rabbitmq_management_api(nodes) == "http://platform:p%40ss@mq1:15672/api/"
    assert rabbitmq_management_api("amqps://u:p@mq1/platform") == "https://u:p@mq1:15671/api/"
    assert rabbitmq_management_api("amqp://127.0.0.1:5672/x") == "http://guest:guest@127.0.0.1:15672/api/"
