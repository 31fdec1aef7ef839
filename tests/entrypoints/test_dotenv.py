"""`.env` as the settings and `make run` read it: inline comments dropped, quoted `#` kept, and
the real environment wins over the file."""

import importlib.util

import environ
import pytest

from config.dotenv import read_dotenv
from tests.support.processes import ROOT

DOTENV = """\
# a comment line
DOTENV_DEBUG=true                   # local default; false elsewhere
DOTENV_LOG_FORMAT=plain             # json in production
DOTENV_PASSWORD='pa#ss'             # quoted: its # is part of it
DOTENV_REDIS_URL=redis://127.0.0.1:6390/3
DOTENV_FLOWER_BASIC_AUTH=from-file:secret
"""
KEYS = [line.split("=")[0] for line in DOTENV.splitlines() if not line.startswith("#")]


@pytest.fixture
def dotenv(tmp_path, monkeypatch):
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)  # and removed again after the test
    monkeypatch.setenv("DOTENV_FLOWER_BASIC_AUTH", "real:environment")
    path = tmp_path / ".env"
    path.write_text(DOTENV)
    return path


def test_inline_comments_are_not_part_of_the_value(dotenv):
    read_dotenv(dotenv)

    env = environ.Env()
    assert env.bool("DOTENV_DEBUG") is True  # "true   # local default" read as false before
    assert env.str("DOTENV_LOG_FORMAT") == "plain"
    assert env.str("DOTENV_PASSWORD") == "pa#ss"
    assert env.str("DOTENV_FLOWER_BASIC_AUTH") == "real:environment"


def test_make_run_takes_redis_url_and_flower_auth_from_dotenv_under_the_real_environment(dotenv):
    spec = importlib.util.spec_from_file_location("run_local", ROOT / "ops" / "run_local.py")
    run_local = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_local)

    env = run_local.environment(dotenv)

    assert env["DOTENV_REDIS_URL"] == "redis://127.0.0.1:6390/3"
    assert env["DOTENV_FLOWER_BASIC_AUTH"] == "real:environment"
    assert env["DOTENV_LOG_FORMAT"] == "plain"
