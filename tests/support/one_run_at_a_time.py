"""One test run at a time on a database and a Redis: a second run that would use the same ones
waits for the first to end. A plugin of tests/conftest.py (`pytest_plugins`), acting in the
process that starts the run (xdist's controller, or the only process).

Two runs sharing them break each other in ways that look like anything but the cause: each xdist
worker's test database (test_<name>_gw0, ...) is created, emptied and dropped by both, and its
Redis database (config/settings/test.py) is purged and consumed by both runs' in-process workers,
which then run each other's jobs. A run in parallel (xdist) and a serial run use different
databases and Redis numbers, so they hold different locks; RabbitMQ vhosts, private redis-servers
and ports are each run's own already.

The lock is an flock on a file named after DATABASE_URL and REDIS_URL, released by the kernel
when the run's process ends, however it ends."""

from __future__ import annotations

import fcntl
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import pytest

_HANDLE = pytest.StashKey[object]()


def lock_path(config: pytest.Config) -> Path:
    parallel = bool(getattr(config.option, "numprocesses", None))
    key = "\n".join([os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", ""), str(parallel)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"platform-test-run-{digest}.lock"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # an xdist worker: its controller holds the lock for the run
    path = lock_path(config)
    handle = open(path, "a+")  # held until the process ends
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another run"
        sys.stderr.write(
            f"waiting for {holder} to end: it uses the same DATABASE_URL and REDIS_URL ({path})\n"
        )
        started = time.monotonic()
        fcntl.flock(handle, fcntl.LOCK_EX)
        sys.stderr.write(f"that run ended; waited {time.monotonic() - started:.0f} s\n")
    handle.seek(0)
    handle.truncate()
    handle.write(f"test run pid {os.getpid()} ({' '.join(sys.argv[1:])[:200]})\n")
    handle.flush()
    config.stash[_HANDLE] = handle
