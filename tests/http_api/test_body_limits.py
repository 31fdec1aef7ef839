"""A body over DATA_UPLOAD_MAX_MEMORY_SIZE (Django's 2.5 MiB) is answered 413 `payload_too_large`
in the contract's shape (docs/contract.md section 3), never 400: at 3 MiB, through Django's test
client and through gunicorn as production runs it (ops/gunicorn.conf.py, config.wsgi), with a
Content-Length and chunked without one, JSON and form-encoded."""

from __future__ import annotations

import http.client
import json
import socket
import sys

import pytest
from django.conf import settings

from http_api.models import AcceptedJob
from tests.http_api.conftest import assert_error, post_job
from tests.support.processes import ROOT, ManagedProcess, free_port, platform_env, wait_until

THREE_MIB = 3 * 1024 * 1024
JSON_BODY = json.dumps({"task": "tasks.fx.update_exchange_rates", "kwargs": {"pad": "x" * THREE_MIB}})
FORM_BODY = "pad=" + "x" * THREE_MIB
FORM = "application/x-www-form-urlencoded"


def test_the_limit_is_djangos_default_and_three_mib_is_over_it():
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == int(2.5 * 1024 * 1024)
    assert len(JSON_BODY) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert len(FORM_BODY) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE


@pytest.mark.django_db
def test_three_mib_to_the_jobs_api_is_413_json_or_form(api):
    assert_error(post_job(api, JSON_BODY), 413, "payload_too_large")
    assert_error(api.post("/api/v1/jobs", data=FORM_BODY, content_type=FORM), 413, "payload_too_large")
    assert not AcceptedJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/webhooks/stripe", "/webhooks/twilio/status"])
def test_three_mib_to_a_webhook_is_413_not_400(client, path):
    details = assert_error(client.post(path, data=FORM_BODY, content_type=FORM), 413, "payload_too_large")

    assert details == {"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE}


# --- through gunicorn -------------------------------------------------------------------------


@pytest.fixture
def gunicorn(database_url, api_key):
    """gunicorn as ops/systemd/platform-web.service starts it, on a free port."""
    port = free_port()
    env = platform_env(
        database_url=database_url, redis_url=_redis_url(), WEB_BIND=f"127.0.0.1:{port}", WEB_WORKERS="1"
    )
    argv = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "ops" / "gunicorn.conf.py")]
    server = ManagedProcess([*argv, "--pythonpath", str(ROOT / "platform"), "config.wsgi"], env, "gunicorn")
    try:
        wait_until(lambda: _listening(port), timeout=60, what=server.tail)
        yield port
    finally:
        server.stop()


def _redis_url() -> str:
    return settings.REDIS_URL


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _post(
    port: int, path: str, body: str, content_type: str, *, key: str = "", chunked: bool
) -> tuple[int, dict]:
    """POST over a real socket; chunked: Transfer-Encoding chunked, no Content-Length."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": content_type}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = body.encode()
    try:
        if chunked:
            pieces = (data[i : i + 65536] for i in range(0, len(data), 65536))
            connection.request("POST", path, body=pieces, headers=headers, encode_chunked=True)
        else:
            connection.request("POST", path, body=data, headers=headers)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered before reading it all: the answer is still there to read
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, json.loads(payload)


def _assert_413(answer: tuple[int, dict]) -> None:
    status, body = answer
    assert status == 413, body
    assert body["error"]["code"] == "payload_too_large"
    assert set(body["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_three_mib_through_gunicorn_is_413(gunicorn, api_key, chunked):
    _assert_413(
        _post(gunicorn, "/api/v1/jobs", JSON_BODY, "application/json", key=api_key.key, chunked=chunked)
    )
    _assert_413(_post(gunicorn, "/api/v1/jobs", FORM_BODY, FORM, key=api_key.key, chunked=chunked))
    _assert_413(_post(gunicorn, "/webhooks/stripe", FORM_BODY, FORM, chunked=chunked))
    assert not AcceptedJob.objects.exists()


def test_a_small_chunked_body_through_gunicorn_is_read_not_taken_for_empty(gunicorn, api_key):
    body = json.dumps({"task": "tasks.fx.update_exchange_rates", "kwargs": {}})

    status, answer = _post(gunicorn, "/api/v1/jobs", body, "application/json", key=api_key.key, chunked=True)

    assert status == 202, answer
    assert AcceptedJob.objects.filter(job_id=answer["id"]).exists()
