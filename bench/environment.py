"""The bench's own database and Redis, and the real processes it measures (workers, gunicorn).

A private redis-server on a free port (so `INFO commandstats` counts only the bench's own
commands, and nothing else on the machine shares its queues), and a PostgreSQL database of its
own, created and migrated here. The bench empties tables freely, so it never touches a database
that is not its own: DATABASE_URL names the server (user, host, port) and, if its database name
contains "bench", the database; otherwise the bench uses `bench_platform` on that server.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_platform"
BENCH_DATABASE = "bench_platform"


# What the bench's processes use instead of real providers (integrations/backends.py).
CONSOLE_BACKENDS = {
    "TWILIO_BACKEND": "integrations.twilio_whatsapp.ConsoleWhatsApp",
    "STRIPE_BACKEND": "integrations.stripe_payments.ConsolePayments",
    "VEHICLE_HISTORY_BACKEND": "integrations.vehicle_history.ConsoleVehicleHistory",
    "FX_BACKEND": "integrations.fx.ConsoleFx",
}


def quick() -> bool:
    """BENCH_QUICK=1: small counts everywhere, for a smoke run in about a minute."""
    return os.environ.get("BENCH_QUICK", "") not in ("", "0", "false", "no")


def scaled(full: int, small: int) -> int:
    return small if quick() else full


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.05) -> object:
    """Poll until `predicate` is truthy; returns its value, or None after `timeout` (no raise:
    a benchmark reports what it saw)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class Process:
    """A subprocess in its own session, its output in a log file (no reader thread competing for
    the two cores), stopped with its whole process group."""

    def __init__(self, argv: list[str], env: dict[str, str], name: str, log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}-{int(time.time() * 1000)}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(  # noqa: S603 our own fixed argv, no shell
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, text: str, *, timeout: float) -> bool:
        return bool(
            wait_until(lambda: text in self.output() or not self.alive(), timeout=timeout) and self.alive()
        )

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self._signal(signal.SIGKILL)  # whatever is left of the group (pool children)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


@dataclass
class Environment:
    database_url: str
    redis_url: str
    log_dir: Path
    private_redis: Process | None = None
    notes: list[str] = field(default_factory=list)
    _processes: list[Process] = field(default_factory=list)

    def env(self, *, settings: str = "bench.settings", **extra: str) -> dict[str, str]:
        """Environment for a platform subprocess (worker, gunicorn) against the bench's services."""
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE=settings,
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            CELERY_BROKER_URL=self.redis_url,
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
        )
        env.update(extra)
        return env

    def start(self, argv: list[str], env: dict[str, str], name: str) -> Process:
        process = Process(argv, env, name, self.log_dir)
        self._processes.append(process)
        return process

    def start_worker(
        self,
        *,
        name: str,
        settings: str = "bench.settings",
        queues: str = "default",
        concurrency: int = 2,
        pool: str = "prefork",
        **extra_env: str,
    ) -> Process:
        """`celery -A tasks worker` as ops/systemd/platform-worker@.service runs it (prefork, -c 2;
        the notifications queue: threads, -c 16; metrics files in a PROMETHEUS_MULTIPROC_DIR of its
        own); returns once it is ready."""
        metrics_dir = tempfile.mkdtemp(prefix="metrics-", dir=self.log_dir)
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tasks",
            "worker",
            "-Q",
            queues,
            "-n",
            f"{name}-{os.getpid()}@%h",
            "-l",
            "INFO",
            "-P",
            pool,
            "--concurrency",
            str(concurrency),
        ]
        env = self.env(settings=settings, PROMETHEUS_MULTIPROC_DIR=metrics_dir, **extra_env)
        worker = self.start(argv, env, name)
        if not worker.wait_for(" ready.", timeout=90):
            tail = worker.tail()
            worker.stop()
            raise RuntimeError(f"worker {name} did not start:\n{tail}")
        return worker

    def stop_all(self) -> None:
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()
        if self.private_redis is not None:
            self.private_redis.stop()
            self.private_redis = None


def bench_database_url(url: str | None) -> str:
    """The bench's own database on the server `url` names (see the module docstring)."""
    if not url:
        return DEFAULT_DATABASE_URL
    parts = urlsplit(url)
    if "bench" in parts.path.lstrip("/"):
        return url
    return urlunsplit(parts._replace(path=f"/{BENCH_DATABASE}"))


def _ensure_database(url: str) -> None:
    """CREATE DATABASE for `url` if it does not exist (connecting to the server's `postgres` db)."""
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    connection = psycopg2.connect(admin_url, connect_timeout=5)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        connection.close()


def _start_private_redis(log_dir: Path) -> tuple[Process, str]:
    from tests.support.processes import free_port, redis_server_binary

    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="redis-", dir=log_dir)
    argv = [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        data_dir,
    ]
    process = Process(argv, dict(os.environ), "redis-server", log_dir)
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    client = redis.Redis(port=port, socket_timeout=0.5)

    def pings() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    if not wait_until(pings, timeout=10):
        process.stop()
        raise RuntimeError(f"private redis-server did not answer:\n{process.tail()}")
    return process, url


def prepare() -> Environment:
    """Database created and migrated, Redis running, Django set up in this process."""
    for path in (str(ROOT), str(ROOT / "platform")):
        if path not in sys.path:
            sys.path.insert(0, path)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    database_url = bench_database_url(os.environ.get("DATABASE_URL"))
    if not database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit(f"make bench needs PostgreSQL: DATABASE_URL={database_url!r}")
    _ensure_database(database_url)

    notes = []
    private_redis = None
    if os.environ.get("BENCH_REDIS_URL"):
        redis_url = os.environ["BENCH_REDIS_URL"]
        notes.append(f"shared Redis {redis_url}: command counts include other clients")
    else:
        private_redis, redis_url = _start_private_redis(log_dir)

    # Production settings want these; the bench supplies harmless local values.
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
    )
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    os.environ.setdefault("FLOWER_BASIC_AUTH", "bench:bench")
    # Production requires the sealed-argument key ring: a fixed bench-only Fernet key.
    os.environ.setdefault("SEALED_ARGUMENT_KEYS", "YmVuY2gtb25seS1zZWFsZWQtYXJndW1lbnRzLWtleSE=")
    # Production settings refuse to start without each integration's credentials or a chosen
    # backend; a bench never calls a real provider, so it chooses the console ones.
    for setting, console in CONSOLE_BACKENDS.items():
        os.environ.setdefault(setting, console)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    # The bench's own table is its output: quiet the in-process platform's INFO lines (the
    # subprocesses it measures keep production's logging, a cost they really pay).
    logging.getLogger().setLevel(logging.WARNING)
    return Environment(
        database_url=database_url,
        redis_url=redis_url,
        log_dir=log_dir,
        private_redis=private_redis,
        notes=notes,
    )


def cleanup_logs(environment: Environment) -> None:
    if not os.environ.get("BENCH_KEEP_LOGS"):
        shutil.rmtree(environment.log_dir, ignore_errors=True)
