"""A worker writes one JSON line per task outcome, with the fields ops search by, and no phone
number in clear anywhere in its output."""

import json
import uuid

import pytest

from tests.conftest import broker_client
from tests.support.processes import wait_until

PHONE = "+14165550123"


def _outcome_line(worker, task_id: str) -> dict | None:
    for line in list(worker.output):
        if task_id in line and '"task_outcome"' in line:
            return json.loads(line)
    return None


@pytest.mark.processes
def test_task_outcome_is_one_json_line_without_the_phone_number(ops_workers, ops_broker):
    worker = ops_workers("logger", "notifications", LOG_FORMAT="json")

    # The job fails with the phone number in its error message, as a real integration error might.
    result = broker_client(ops_broker.url).send_task(
        "probe.value_error", kwargs={"marker": PHONE}, queue="notifications"
    )

    line = wait_until(lambda: _outcome_line(worker, result.id), timeout=30, what="the outcome line")
    assert line["event"] == "task_outcome"
    assert line["task_id"] == result.id
    assert line["task"] == "probe.value_error"
    assert line["queue"] == "notifications"
    assert line["attempt"] == 1
    assert line["state"] == "FAILURE"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["level"] == "WARNING"
    assert "+1416*****23" in line["error"]
    # Nowhere in the worker's output: not this line, not Celery's own failure log, not the
    # dead-letter warning.
    output = "".join(worker.output)
    assert PHONE not in output
    assert output.count("+1416*****23") >= 2


@pytest.mark.processes
def test_a_task_return_value_is_not_in_the_worker_output(ops_workers, ops_broker):
    # Celery logs "Task ... succeeded in ...: <return value>" at INFO, and a return value may
    # hold personal data; the task_outcome line already says the task succeeded.
    worker = ops_workers("returner", "default", LOG_FORMAT="json")

    # probe.flaky with no failures returns "recovered", a word none of its arguments holds.
    result = broker_client(ops_broker.url).send_task(
        "probe.flaky", kwargs={"marker": uuid.uuid4().hex, "failures": 0}, queue="default"
    )

    line = wait_until(lambda: _outcome_line(worker, result.id), timeout=30, what="the outcome line")
    assert line["state"] == "SUCCESS"
    assert "recovered" not in "".join(worker.output)


@pytest.mark.processes
def test_task_arguments_are_not_in_the_worker_output(ops_workers, ops_broker):
    # Celery's "Task ... received" INFO line carries the arguments, which may be personal data.
    worker = ops_workers("quiet", "default", LOG_FORMAT="json")
    marker = uuid.uuid4().hex

    result = broker_client(ops_broker.url).send_task(
        "probe.flaky", kwargs={"marker": marker, "failures": 0}, queue="default"
    )

    line = wait_until(lambda: _outcome_line(worker, result.id), timeout=30, what="the outcome line")
    assert line["state"] == "SUCCESS"
    assert marker not in "".join(worker.output)
