"""Settings for the test suite: real Redis and real database (PostgreSQL when DATABASE_URL names one)."""

from .base import *  # noqa: F403
from .base import DATABASES, VAR_DIR

# Fast password hashing: tests create many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Worker subprocesses must see the test database, so SQLite tests use a file, not memory.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

# Tasks only tests enqueue (tests/support/probe/tasks.py), registered in every test worker.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.support.probe"]  # noqa: F405
CELERY_IMPORTS = ["tests.support.probe.tasks"]
