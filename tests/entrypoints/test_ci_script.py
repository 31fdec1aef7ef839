"""CI's entry point is a valid shell script that runs the README's test command, and a failed run
ends with a digest of why (.ci/failure_digest.py)."""

import subprocess
import sys

from tests.support.processes import ROOT

FAILING_TESTS = """
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("the fixture broke")

def test_that_fails():
    assert 1 == 2, "one is not two"

def test_that_errors(broken):
    pass

def test_that_passes():
    pass
"""


def test_ci_script_parses_and_runs_make_test_and_a_bench_smoke():
    script = ROOT / ".ci" / "run"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    commands = [line.strip() for line in script.read_text().splitlines() if not line.lstrip().startswith("#")]
    # The suite's output is kept and a failure digested; the run still fails.
    assert "if ! make test 2>&1 | tee var/ci/test.log; then" in commands
    assert "python3 .ci/failure_digest.py var/ci/test.log" in commands
    assert "exit 1" in commands
    assert "set -euo pipefail" in commands  # the pipe's status is make's, not tee's
    assert "BENCH_QUICK=1 make bench" in commands
    # Flower's Broker page on RabbitMQ (tests/browser/test_flower_broker.py) needs the plugin.
    assert "rabbitmq-plugins -q enable rabbitmq_management >/dev/null" in commands


def test_the_failure_digest_names_each_failure_with_its_reason_and_the_services_state(tmp_path):
    (tmp_path / "test_failing.py").write_text(FAILING_TESTS)
    log = tmp_path / "test.log"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-ra",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:django",
            "test_failing.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    log.write_text(run.stdout + run.stderr)
    assert run.returncode == 1

    digest = subprocess.run(
        ["python3", str(ROOT / ".ci" / "failure_digest.py"), str(log)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    after = digest.split("CI failure digest", 1)[1]
    assert "--- failure: test_that_fails" in after and "AssertionError: one is not two" in after
    assert (
        "--- error: ERROR at setup of test_that_errors" in after
        and "RuntimeError: the fixture broke" in after
    )
    summary = after.split("every failed or erroring test", 1)[1]
    assert "FAILED test_failing.py::test_that_fails - AssertionError: one is not two" in summary
    assert "ERROR test_failing.py::test_that_errors - RuntimeError: the fixture broke" in summary
    assert "test_that_passes" not in summary
    services = after.split("the machine's services now:", 1)[1]
    for line in (
        "postgresql connections:",
        "redis 6379:",
        "rabbitmq: file descriptors",
        "load average:",
        "disk:",
    ):
        assert line in services
