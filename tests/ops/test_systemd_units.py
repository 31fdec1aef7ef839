"""ops/systemd/ units pass `systemd-analyze verify`, stop warm, restart on failure, and are hardened."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from tasks.app import app
from tests.support.processes import ROOT

UNITS_DIR = ROOT / "ops" / "systemd"
UNITS = (
    "platform-web.service",
    "platform-worker@.service",
    "platform-beat.service",
    "platform-flower.service",
)
INSTALL_PREFIX = "/opt/platform"


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if not found:
        pytest.fail("systemd-analyze is missing: `apt-get install systemd` (this test must not skip)")
    return found


def _render(tmp_path: Path) -> list[Path]:
    """The units as installed from this checkout: verify checks that every ExecStart binary
    exists, and this checkout's .venv has gunicorn and celery where /opt/platform's would."""
    rendered = []
    for name in UNITS:
        text = (UNITS_DIR / name).read_text().replace(INSTALL_PREFIX, str(ROOT))
        rendered.append(tmp_path / name)
        rendered[-1].write_text(text)
    # A template is verified both as itself and as an instance (the instance is the queue),
    # with the instance's drop-ins (verify reads them from beside the unit).
    instance = tmp_path / "platform-worker@notifications.service"
    instance.write_text(rendered[1].read_text())
    dropins = tmp_path / f"{instance.name}.d"
    dropins.mkdir()
    for conf in (UNITS_DIR / dropins.name).glob("*.conf"):
        (dropins / conf.name).write_text(conf.read_text().replace(INSTALL_PREFIX, str(ROOT)))
    return [*rendered, instance]


def _verify(paths: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_systemd_analyze(), "verify", "--man=no", "--generators=no", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_units_pass_systemd_analyze_verify_without_a_warning(tmp_path):
    done = _verify(_render(tmp_path))

    # verify exits 0 on unknown keys and bad values (it ignores them): any output is a failure.
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr


def test_verify_would_catch_a_broken_unit(tmp_path):
    broken = tmp_path / "broken.service"
    broken.write_text("[Service]\nExecStart=/bin/true\nRestart=sometimes\nHardenEverything=yes\n")

    done = _verify([broken])

    assert "restart specifier" in done.stderr and "HardenEverything" in done.stderr


def _directives(name: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (UNITS_DIR / name).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.mark.parametrize("name", UNITS)
def test_every_unit_restarts_on_failure_stops_with_sigterm_and_is_hardened(name):
    unit = _directives(name)

    assert unit["Restart"] == ["on-failure"]
    assert unit["KillSignal"] == ["SIGTERM"]
    assert unit["User"] == ["platform"]
    assert unit["EnvironmentFile"] == ["/etc/platform/platform.env"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
    }.items():
        assert unit[key] == [value], key


def test_worker_waits_for_the_longest_task_before_being_killed():
    app.loader.import_default_modules()
    longest = max(
        (task.time_limit or settings.CELERY_TASK_TIME_LIMIT)
        for name, task in app.tasks.items()
        if not name.startswith("celery.")
    )
    worker = _directives("platform-worker@.service")

    assert int(worker["TimeoutStopSec"][0]) > longest
    assert re.search(r"-Q %i -n %i@%H", worker["ExecStart"][0])


def test_the_notifications_worker_gets_a_thread_pool_and_the_others_prefork():
    """The notifications queue waits on Twilio: threads (ops/systemd/...notifications.service.d)."""
    worker = _directives("platform-worker@.service")
    dropin = {}
    for line in (
        (UNITS_DIR / "platform-worker@notifications.service.d" / "io-pool.conf").read_text().splitlines()
    ):
        if line.startswith("Environment="):
            key, value = line.removeprefix("Environment=").split("=", 1)
            dropin[key] = value

    assert "--pool ${WORKER_POOL} --concurrency ${WORKER_CONCURRENCY}" in worker["ExecStart"][0]
    assert "WORKER_POOL=prefork" in worker["Environment"]
    assert dropin["WORKER_POOL"] == "threads" and int(dropin["WORKER_CONCURRENCY"]) >= 8


def test_a_broken_dropin_of_the_notifications_worker_fails_verify(tmp_path):
    """Proof that the verify above reads the instance's drop-in at all."""
    paths = _render(tmp_path)
    (tmp_path / "platform-worker@notifications.service.d" / "io-pool.conf").write_text(
        "[Service]\nExecStart=\nExecStart=/nonexistent/celery\n"
    )

    done = _verify(paths)

    assert "/nonexistent/celery" in done.stdout + done.stderr
