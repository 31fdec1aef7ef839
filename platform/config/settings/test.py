"""Settings for the test suite: real Redis and real database (PostgreSQL when DATABASE_URL names one)."""

import os
from urllib.parse import urlsplit


def _isolate_xdist_worker() -> None:
    """Each pytest-xdist worker (`make test` runs several: README, Testing) gets a Redis database
    of its own: REDIS_URL's database number + 1 + the worker's number (gw0 -> 1, gw1 -> 2, ...).
    `live_worker` purges and consumes the queues in REDIS_URL, so workers sharing one database
    would take each other's jobs. The test database is per worker already (pytest-django
    suffixes its name with the worker's id). Written back to the environment before the base
    settings read it, so the cache, the broker, the lock store, and every subprocess started with
    a copy of this environment agree; a subprocess given a REDIS_URL of its own (a private
    redis-server) keeps it: TEST_REDIS_URL_WORKER says the number was chosen already."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ...; unset without xdist
    if not worker or os.environ.get("TEST_REDIS_URL_WORKER") == worker:
        return
    url = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    db = int(url.path.strip("/") or 0) + 1 + int(worker.removeprefix("gw"))
    if db > 15:
        raise RuntimeError(f"xdist worker {worker}: Redis has no database {db} (0-15); use fewer workers")
    os.environ["TEST_REDIS_URL_OF_THE_RUN"] = url.geturl()  # as the run was given it
    os.environ["REDIS_URL"] = url._replace(path=f"/{db}").geturl()
    os.environ["TEST_REDIS_URL_WORKER"] = worker


_isolate_xdist_worker()

from .base import *  # noqa: E402, F403
from .base import DATABASES, VAR_DIR  # noqa: E402

# Fast password hashing: tests create many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Worker subprocesses must see the test database, so SQLite tests use a file, not memory.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

# Tasks only tests enqueue (tests/support/probe/tasks.py), registered in every test worker.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.support.probe"]  # noqa: F405
CELERY_IMPORTS = ["tests.support.probe.tasks"]
