"""One test run at a time on a database and a Redis: a second run that would use the same ones
waits for the first to end. A plugin of tests/conftest.py (`pytest_plugins`), acting in the
process that starts the run (xdist's controller, or the only process).

Two runs sharing them break each other in ways that look like anything but the cause: each xdist
worker's test database (test_<name>_gw0, ...) is created, emptied and dropped by both, and its
Redis database (config/settings/test.py) is purged and consumed by both runs' in-process workers,
which then run each other's jobs. A run in parallel (xdist) and a serial run use different
databases and Redis numbers, so they hold different locks; RabbitMQ vhosts, private redis-servers
and ports are each run's own already.

The locks are flocks on two files, one named after DATABASE_URL and one after REDIS_URL, taken
in that order and released by the kernel when the run's process ends, however it ends. Two
REDIS_URLs whose worker databases overlap (db 0 and db 2 with 10 workers each) are not told apart:
docs/testing.md says to keep them apart."""

from __future__ import annotations

import fcntl
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import pytest

_HANDLES = pytest.StashKey[list]()


def lock_paths(config: pytest.Config) -> list[Path]:
    """One lock for the run's test databases and one for its Redis databases (a run in parallel
    and a serial one use different ones of each), in a fixed order: two runs sharing either wait."""
    mode = "parallel" if getattr(config.option, "numprocesses", None) else "serial"
    keys = [
        f"database {os.environ.get('DATABASE_URL', '')} {mode}",
        f"redis {os.environ.get('REDIS_URL', '')} {mode}",
    ]
    directory = Path(tempfile.gettempdir())
    return [directory / f"platform-test-run-{hashlib.sha256(k.encode()).hexdigest()[:16]}.lock" for k in keys]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # an xdist worker: its controller holds the locks for the run
    if config.option.help or config.option.collectonly:
        return  # runs no test
    config.stash[_HANDLES] = [_hold(path) for path in lock_paths(config)]


def _hold(path: Path):
    handle = open(path, "a+")  # held until the process ends
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another run"
        sys.stderr.write(f"waiting for {holder} to end: it uses this run's database or Redis ({path})\n")
        started = time.monotonic()
        fcntl.flock(handle, fcntl.LOCK_EX)
        sys.stderr.write(f"that run ended; waited {time.monotonic() - started:.0f} s\n")
    handle.seek(0)
    handle.truncate()
    handle.write(f"test run pid {os.getpid()} ({' '.join(sys.argv[1:])[:200]})\n")
    handle.flush()
    return handle
