"""How `make test` runs in parallel (tests/support/parallel.py), in real pytest-xdist runs of a few
tests of our own: a group's tests all run on one worker, in file order by module; other tests
spread over the workers; the longest tests (by the durations the last run recorded) go first.

Each run is `pytest -n N` in a directory of its own, with the plugin and `--dist loadgroup
--no-loadscope-reorder` as the suite uses them; its tests sit under tests/browser/ (a group) and
tests/other/, and each writes down which worker ran it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from tests.support.processes import ROOT

RECORDING_TEST = """
import os, pathlib, time

def _ran(name):
    with open(pathlib.Path(__file__).parents[2] / "ran.log", "a") as log:
        log.write(f"{{os.environ['PYTEST_XDIST_WORKER']}} {{__name__}}::{{name}}\\n")

{tests}
"""


def _write_tests(root: Path, module: str, names: list[str], *, seconds: float) -> None:
    tests = "\n".join(f"def {name}():\n    time.sleep({seconds})\n    _ran({name!r})\n" for name in names)
    path = root / module
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RECORDING_TEST.format(tests=tests))


def _run(root: Path, workers: int, *extra: str) -> list[tuple[str, str]]:
    argv = [sys.executable, "-m", "pytest", "-c", os.devnull, "--rootdir", str(root), "-p", "no:django"]
    argv += ["-p", "tests.support.parallel", "-n", str(workers), "--dist", "loadgroup"]
    argv += ["--no-loadscope-reorder", *extra, "tests"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        argv, cwd=root, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [tuple(line.split(" ", 1)) for line in (root / "ran.log").read_text().splitlines()]


def test_a_groups_tests_all_run_on_one_worker_while_the_others_spread(tmp_path):
    browser_a = [f"test_page_a{n}" for n in range(4)]
    browser_b = [f"test_page_b{n}" for n in range(4)]
    others = [f"test_other_{n}" for n in range(8)]
    _write_tests(tmp_path, "tests/browser/test_a.py", browser_a, seconds=0.2)
    _write_tests(tmp_path, "tests/browser/test_b.py", browser_b, seconds=0.2)
    _write_tests(tmp_path, "tests/other/test_other.py", others, seconds=0.2)

    ran = _run(tmp_path, 3, "-p", "no:cacheprovider")

    workers_of = defaultdict(set)
    for worker, test in ran:
        workers_of["browser" if test.startswith(("test_a::", "test_b::")) else test].add(worker)
    assert len(workers_of.pop("browser")) == 1, ran
    assert len(set().union(*workers_of.values())) >= 2, f"the ungrouped tests all ran on one worker: {ran}"
    # The group's tests in file order, one module after the other.
    group = [test for _, test in ran if test.startswith(("test_a::", "test_b::"))]
    assert group == [f"test_a::{n}" for n in browser_a] + [f"test_b::{n}" for n in browser_b]


def test_the_tests_the_last_run_found_longest_go_first(tmp_path):
    names = ["test_short", "test_unknown", "test_long", "test_longer"]
    _write_tests(tmp_path, "tests/other/test_order.py", names, seconds=0)
    cache = tmp_path / ".pytest_cache" / "v" / "platform"
    cache.mkdir(parents=True)
    node = "tests/other/test_order.py::"
    durations = {node + "test_short": 6.0, node + "test_long": 40.0, node + "test_longer": 90.0}
    (cache / "test-durations").write_text(json.dumps(durations))

    ran = _run(tmp_path, 1)

    order = [test.split("::")[1] for _, test in ran]
    assert order == ["test_longer", "test_long", "test_short", "test_unknown"]
