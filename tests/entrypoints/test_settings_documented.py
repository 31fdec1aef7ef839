"""Every setting read from the environment is listed in .env.example and described in docs/settings.md."""

import re

from tests.support.processes import ROOT

READ = re.compile(r'env(?:\.[a-z]+)?\(\s*"([A-Z][A-Z0-9_]+)"')


def _settings_read() -> set[str]:
    names = set()
    for module in (ROOT / "platform" / "config" / "settings").glob("*.py"):
        names |= set(READ.findall(module.read_text()))
    return names


def test_every_environment_setting_is_listed_in_env_example():
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert _settings_read() - listed == set()


def test_every_environment_setting_is_described_in_the_settings_page():
    readme = (ROOT / "docs" / "settings.md").read_text()
    assert {name for name in _settings_read() if f"`{name}`" not in readme} == set()
