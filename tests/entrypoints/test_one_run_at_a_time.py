"""One test run at a time on a database and a Redis (tests/support/one_run_at_a_time.py): another
run started now, while this one holds the locks, waits for it if it shares this run's database or
its Redis; one on another database and another Redis does not."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.processes import ROOT, wait_until

A_TEST = "def test_nothing():\n    pass\n"


def _another_run(tmp_path, **env: str) -> subprocess.Popen:
    """`pytest` on one empty test with the lock plugin, in the mode (xdist or not) of this run, as
    another developer's or CI's run would start."""
    (tmp_path / "test_other.py").write_text(A_TEST)
    parallel = "PYTEST_XDIST_WORKER" in os.environ  # this run's mode (a worker's own option says 0)
    argv = [sys.executable, "-m", "pytest", "-c", os.devnull, "-p", "no:cacheprovider", "-p", "no:django"]
    argv += ["-p", "tests.support.one_run_at_a_time", "-n", "1" if parallel else "0", "test_other.py"]
    return subprocess.Popen(
        argv,
        cwd=tmp_path,
        env={**_environment_of_this_run(), "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _environment_of_this_run() -> dict[str, str]:
    """This run's environment as it was started: not an xdist worker's (its own REDIS_URL number,
    config/settings/test.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TEST_REDIS_URL"))}
    env["REDIS_URL"] = os.environ.get("TEST_REDIS_URL_OF_THE_RUN", os.environ["REDIS_URL"])
    return env


@pytest.fixture
def stop_after():
    started: list[subprocess.Popen] = []
    yield started.append
    for process in started:
        process.kill()
        process.wait()


def _another_database(tmp_path) -> str:
    """A database URL no other run uses (these runs never connect to it): each test its own, so
    that tests running side by side do not wait on each other's runs."""
    return f"postgres://postgres@127.0.0.1:5432/other_{tmp_path.name}"


def _another_redis(tmp_path) -> str:
    return f"redis://127.0.0.1:6379/15?for={tmp_path.name}"


@pytest.mark.parametrize("shares", ["both", "database", "redis"])
def test_a_run_sharing_this_ones_database_or_redis_waits_for_it(tmp_path, stop_after, shares):
    elsewhere = {
        "both": {},
        "database": {"REDIS_URL": _another_redis(tmp_path)},
        "redis": {"DATABASE_URL": _another_database(tmp_path)},
    }[shares]
    other = _another_run(tmp_path, **elsewhere)
    stop_after(other)
    said: list[str] = []

    def waiting() -> bool:
        said.append(other.stderr.readline())
        return "waiting for test run pid" in said[-1]

    wait_until(waiting, timeout=60, what=lambda: f"the other run to say it waits: {''.join(said)}")
    assert (
        f"test run pid {os.getppid() if os.environ.get('PYTEST_XDIST_WORKER') else os.getpid()}" in said[-1]
    )
    assert other.poll() is None, "the other run went on while this one holds the lock"


def test_a_run_on_another_database_and_another_redis_does_not_wait(tmp_path, stop_after):
    other = _another_run(
        tmp_path, REDIS_URL=_another_redis(tmp_path), DATABASE_URL=_another_database(tmp_path)
    )
    stop_after(other)

    out, err = other.communicate(timeout=120)

    assert other.returncode == 0, out + err
    assert "waiting for" not in err
