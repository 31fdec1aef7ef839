"""How the suite runs in parallel (`make test`: pytest-xdist, README: Testing). A plugin of
tests/conftest.py (`pytest_plugins`).

Each xdist worker is a pytest process with resources of its own, so independent tests run side
by side: its own test database (pytest-django suffixes the name: test_<name>_gw0, ...), its own
Redis database (config/settings/test.py: REDIS_URL's number + 1 + the worker's), its own RabbitMQ
vhost (the session's `rabbitmq_vhost`, a uuid name), and a free loopback port for every server a
test starts (tests/support/processes.py). Nothing in the suite restarts or kills a server other
tests use: a test that stops or kills a broker stops its own private redis-server, or takes the
permissions on its own worker's vhost away.

Tests that must not overlap with each other form a group (GROUPS, by path): a group runs on one
worker, one test after another, while the other workers run the rest. The groups are this
plugin's own scheduler's (GroupScheduling, `pytest_xdist_make_scheduler`), not xdist's
`xdist_group` marks: with pytest 9.2, xdist 3.8's `--dist loadgroup` silently groups nothing (it
renames the test ids it schedules by, which pytest no longer lets it do: pytest-xdist issue 1386).
tests/entrypoints/test_parallel_groups.py shows a group on one worker in a real parallel run.

Long tests are handed out first, so that the run does not end waiting on one: the workers order
what they collected by the durations the last run recorded (pytest's cache, .pytest_cache), which
the controller hands them. A fresh clone (CI) has no cache: it starts from tests/support/durations.json,
the long tests' durations from a full run, committed (`SAVE_TEST_DURATIONS=1 make test` rewrites
it). A test neither knows counts as long if it starts real processes (`processes` marker).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

GROUPS = {
    # One Chromium for the package (its fixtures are package-scoped), a web process, a worker and
    # sometimes a beat per test, and a page-load deadline (LOAD_DEADLINE_SECONDS): the browser tests
    # run one at a time, as they did before the suite ran in parallel.
    "tests/browser/": "browser",
    # Fills its worker's test database with 100,000 task results and 50,000 rows in every other
    # big table (a module-scoped fixture): once, on one worker, rather than on every worker that
    # would draw one of its tests.
    "tests/jobs/test_admin_scale.py": "cpu-heavy",
    # Fills its worker's test database with 200,000 task results in issue 24's shape (a
    # module-scoped fixture, about 30 s on a busy machine), then reads query plans: once, on one
    # worker. Spread over the workers, each filled it again for the one or two tests it drew.
    "tests/jobs/test_admin_index_order.py": "admin-index-order",
    # Three RabbitMQ nodes of the test's own (Erlang VMs, about 20 s of start-up on two busy
    # cores) and a bound on the pause after the node's loss; a benchmark in all but name (it
    # writes bench/results/rabbitmq_cluster.json).
    "tests/brokers/test_rabbitmq_cluster.py": "cpu-heavy",
}

_DURATIONS = "platform/test-durations"  # pytest cache key: node id -> seconds, from the last run
_COMMITTED = Path(__file__).with_name("durations.json")  # the same, for a clone with no cache
_COMMITTED_FROM_SECONDS = 5.0  # shorter tests are all alike to the ordering: kept out of the file
_UNKNOWN_PROCESSES_SECONDS = 30.0  # a test with real worker/beat/redis-server subprocesses
_UNKNOWN_SECONDS = 0.5


def group_of(nodeid: str) -> str | None:
    for prefix, group in GROUPS.items():
        if nodeid.startswith(prefix):
            return group
    return None


class GroupScheduling(LoadScopeScheduling):
    """xdist's scope scheduling, a scope being a group (all its tests to one worker, in the order
    collected) or else one test. Work units go out in the order the workers collected (the
    longest first, below: `--no-loadscope-reorder`, pyproject.toml), each worker taking the next
    as it finishes one. `_split_scope` is xdist's own extension point for its scope schedulers
    (its loadfile and loadgroup override it too): an upgrade that changes it fails
    tests/entrypoints/test_parallel_groups.py."""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid) or nodeid


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which would answer for --dist loadgroup
def pytest_xdist_make_scheduler(config: pytest.Config, log) -> GroupScheduling | None:
    if config.getvalue("dist") != "loadgroup":
        return None  # another --dist asked for on the command line: xdist's own
    return GroupScheduling(config, log)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist's controller hands every worker the same durations: the committed file's, and over
    them the cache's, read once."""
    cache = getattr(node.config, "cache", None)
    durations = json.loads(_COMMITTED.read_text()) if _COMMITTED.exists() else {}
    durations.update(cache.get(_DURATIONS, {}) if cache else {})
    node.workerinput[_DURATIONS] = durations


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In every xdist worker, the tests the last run found longest first (the workers' collections
    must be equal, order included: they all sort by the durations the controller handed them),
    a group's tests together and by module. A run without xdist keeps the files' order."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return
    known = workerinput.get(_DURATIONS, {})

    def expected_seconds(item: pytest.Item) -> float:
        nodeid = item.nodeid
        if nodeid in known:
            return known[nodeid]
        return _UNKNOWN_PROCESSES_SECONDS if item.get_closest_marker("processes") else _UNKNOWN_SECONDS

    # A group runs on one worker in this order: its tests stay together by module, so that a
    # module's fixtures (a filled database) are set up once, not again whenever the order
    # returns to the module. The group takes its place in the queue by its whole length.
    seconds = {item: expected_seconds(item) for item in items}
    group_total: dict[str, float] = {}
    module_total: dict[tuple[str, str], float] = {}
    for item in items:
        group = group_of(item.nodeid)
        if group:
            group_total[group] = group_total.get(group, 0.0) + seconds[item]
            module = (group, item.nodeid.split("::")[0])
            module_total[module] = module_total.get(module, 0.0) + seconds[item]

    def order(indexed: tuple[int, pytest.Item]) -> tuple[float, str, float, str, int]:
        index, item = indexed
        group = group_of(item.nodeid)
        if not group:
            return (-seconds[item], "", 0.0, "", index)
        module = item.nodeid.split("::")[0]
        return (-group_total[group], group, -module_total[(group, module)], module, index)

    items[:] = [item for _, item in sorted(enumerate(items), key=order)]


_measured: dict[str, float] = {}  # in the controller (or the only process): setup + call + teardown


@pytest.hookimpl
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _measured[report.nodeid] = _measured.get(report.nodeid, 0.0) + report.duration


@pytest.hookimpl
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    cache = getattr(config, "cache", None)
    if hasattr(config, "workerinput") or cache is None or not _measured:
        return
    durations = cache.get(_DURATIONS, {})
    durations.update({nodeid: round(seconds, 2) for nodeid, seconds in _measured.items()})
    cache.set(_DURATIONS, durations)
    if os.environ.get("SAVE_TEST_DURATIONS"):
        long_tests = {n: round(s) for n, s in sorted(durations.items()) if s >= _COMMITTED_FROM_SECONDS}
        _COMMITTED.write_text(json.dumps(long_tests, indent=0) + "\n")
