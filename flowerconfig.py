"""Flower's configuration, read by `celery -A tasks flower` from the repository root (Flower's
default --conf). Authentication is not optional: without FLOWER_BASIC_AUTH Flower refuses to start."""

import os
import sys

_auth = os.environ.get("FLOWER_BASIC_AUTH", "")
if ":" not in _auth:
    sys.exit("FLOWER_BASIC_AUTH is required (user:password): Flower never runs without authentication.")

basic_auth = [_auth]
address = os.environ.get("FLOWER_ADDRESS", "127.0.0.1")
port = int(os.environ.get("FLOWER_PORT", "5555"))
# Flower keeps task history in memory; bound it.
max_tasks = 10000
