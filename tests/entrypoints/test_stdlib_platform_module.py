"""platform/ is a source root, never a package: every entry point imports the standard library's
`platform` module (uuid, kombu, twilio and stripe depend on it)."""

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from django_celery_results.models import TaskResult

from tests.conftest import broker_client
from tests.support.processes import ROOT, platform_env, start_worker, wait_until

STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
PROBE = "import platform, json; print(json.dumps({'file': platform.__file__, 'system': platform.system()}))"


def _is_stdlib(path: str) -> bool:
    return Path(path).resolve().parent == STDLIB


def _last_json_line(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_there_is_no_platform_package_at_the_root():
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_manage_py_imports_the_standard_library_platform(tmp_path):
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PROBE],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env=platform_env(
            database_url="sqlite:///" + str(tmp_path / "db"), redis_url="redis://127.0.0.1:6379/15"
        ),
    ).stdout
    module = _last_json_line(out)
    assert _is_stdlib(module["file"]) and module["system"] == "Linux"


def test_wsgi_application_imports_the_standard_library_platform(tmp_path):
    # As gunicorn loads it: the repository root as working directory, platform/ on the path.
    code = f"import sys; sys.path.insert(0, 'platform'); import config.wsgi; {PROBE}"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env=platform_env(
            database_url="sqlite:///" + str(tmp_path / "db"), redis_url="redis://127.0.0.1:6379/15"
        ),
    ).stdout
    module = _last_json_line(out)
    assert _is_stdlib(module["file"]) and module["system"] == "Linux"


@pytest.mark.django_db(transaction=True)
@pytest.mark.processes
def test_celery_worker_imports_the_standard_library_platform(database_url, private_redis):
    env = platform_env(database_url=database_url, redis_url=private_redis.url)
    worker = start_worker(env, name="platform-check", concurrency=1)
    try:
        job = broker_client(private_redis.url).send_task("probe.platform_module", queue="default")
        stored = wait_until(
            lambda: TaskResult.objects.filter(task_id=job.id, status="SUCCESS").first(),
            timeout=30,
            what="the probe to finish",
        )
    finally:
        worker.stop()
    module = json.loads(stored.result)
    assert _is_stdlib(module["file"]) and module["system"] == "Linux"
