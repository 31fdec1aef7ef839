"""Task names have one home, the catalog in jobs/task_names.py: it names every task the platform
registers and nothing else, every platform task declares its arguments, and no module retypes a
task's name as a string."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from beat_schedules.defaults import DEFAULT_SCHEDULES
from http_api import registry
from jobs.task_names import TaskName
from tasks.app import app

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "platform" / "jobs" / "task_names.py"


@pytest.fixture(scope="module")
def registered() -> dict:
    for module in app.conf.include:  # what every worker imports
        importlib.import_module(module)
    return dict(app.tasks)


def test_every_name_in_the_catalog_is_a_registered_task(registered):
    assert [name for name in TaskName if name not in registered] == []


def test_every_task_the_platform_registers_is_in_the_catalog(registered):
    ours = {name for name in registered if name.startswith("tasks.")}
    assert ours == {name for name in TaskName if name.startswith("tasks.")}


def test_every_platform_task_declares_its_arguments(registered):
    undeclared = [
        name for name in TaskName if name.startswith("tasks.") and registered[name].arguments is None
    ]
    assert undeclared == []


def test_the_registry_and_the_schedules_name_catalogued_tasks():
    assert set(registry.TRIGGERABLE) <= set(TaskName)
    assert {schedule.task for schedule in DEFAULT_SCHEDULES} <= set(TaskName)


def test_no_module_retypes_a_task_name():
    literal = re.compile(r"""["']tasks\.[a-z_]+\.[a-z_]+["']""")
    sources = [
        path
        for folder in ("platform", "tasks", "beat_schedules", "integrations")
        for path in (ROOT / folder).rglob("*.py")
        if "migrations" not in path.parts and path != CATALOG
    ]
    found = [(str(p.relative_to(ROOT)), m) for p in sources for m in literal.findall(p.read_text())]
    assert found == []
