"""CI's entry point is a valid shell script that runs the README's test command."""

import subprocess

from tests.support.processes import ROOT


def test_ci_script_parses_and_runs_make_test_and_a_bench_smoke():
    script = ROOT / ".ci" / "run"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    commands = [line.strip() for line in script.read_text().splitlines() if not line.lstrip().startswith("#")]
    assert "make test" in commands
    assert "BENCH_QUICK=1 make bench" in commands
    # Flower's Broker page on RabbitMQ (tests/browser/test_flower_broker.py) needs the plugin.
    assert "rabbitmq-plugins -q enable rabbitmq_management >/dev/null" in commands
