"""Flower's configuration, read by `celery -A tasks flower` from the repository root (Flower's
default --conf), after the platform's Celery app is loaded (so `jobs` and Django's settings are
importable here). Authentication is not optional: without FLOWER_BASIC_AUTH Flower refuses to start."""

import os
import sys

from django.conf import settings as _settings

from jobs.operations.flower_broker import install as _install_broker_adapter

_auth = os.environ.get("FLOWER_BASIC_AUTH", "")
if ":" not in _auth:
    sys.exit("FLOWER_BASIC_AUTH is required (user:password): Flower never runs without authentication.")

basic_auth = [_auth]
address = os.environ.get("FLOWER_ADDRESS", "127.0.0.1")
port = int(os.environ.get("FLOWER_PORT", "5555"))
# Flower keeps task history in memory; bound it.
max_tasks = 10000

# The Broker page lists every platform queue with its length on both brokers (README "Flower").
# Redis: Flower reads the queues itself, once it knows the platform's transport for kombu's Redis.
_install_broker_adapter()
# RabbitMQ: from the management API (the rabbitmq_management plugin, ops/rabbitmq/enabled_plugins).
if _settings.FLOWER_BROKER_API:
    broker_api = _settings.FLOWER_BROKER_API
