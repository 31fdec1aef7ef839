"""The fault-injection suite's figures, gathered wherever the scenarios run.

Each scenario reports what it submitted, the faults it injected and the effects it observed
(the `fault_figures` fixture, tests/faults/conftest.py) as a user property of its test report.
Reports reach the process that prints the run's summary, also from pytest-xdist's workers (`make
test` runs the suite in parallel), so the table is printed at the end of the run and written to
bench/results/faults.json by that process only. A plugin of tests/conftest.py (`pytest_plugins`),
so that its hooks run in xdist's controller, which collects no test and loads no tests/faults
conftest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "faults.json"
PROPERTY = "fault_figures"
_figures_of_this_run: list[dict] = []  # in the process that prints the summary


def record(request: pytest.FixtureRequest, **figures) -> None:
    """One scenario's figures, carried by its test report."""
    scenario = request.node.name.removeprefix("test_")
    request.node.user_properties.append((PROPERTY, {"scenario": scenario, **figures}))


def _summarizes(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")  # an xdist worker hands its reports to the controller


@pytest.hookimpl
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == PROPERTY:
            _figures_of_this_run.append(value)


@pytest.hookimpl
def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if not _figures_of_this_run or not _summarizes(config):
        return
    write = terminalreporter.write_line
    write("")
    write("fault-injection figures")
    header = f"{'scenario':<62} {'jobs':>6} {'faults':>6} {'effects':>7} {'lost':>5} {'dup':>4}"
    write(header)
    write("-" * len(header))
    for row in _figures_of_this_run:
        write(
            f"{row['scenario'][:62]:<62} {row['submitted']:>6} {row['faults']:>6} "
            f"{row['effects']:>7} {row['lost']:>5} {row['duplicated']:>4}"
        )
        if row.get("note"):
            write(f"    {row['note']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(_figures_of_this_run, indent=2))
