"""The task base on a real worker and a real Redis broker: results, retries, dead letters."""

from datetime import datetime

import pytest
from django_celery_results.models import TaskResult

from jobs.models import DeadLetter
from tasks.app import app
from tests.support.probe import tasks as probe
from tests.support.probe.models import ProbeEffect, ProbeExecution
from tests.support.processes import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_worker")]


def _dead_letter(task_id: str) -> DeadLetter:
    return wait_until(
        lambda: DeadLetter.objects.filter(task_id=task_id).first(), timeout=30, what="a dead letter"
    )


def test_delayed_task_runs_and_its_states_are_stored_with_name_and_arguments(marker):
    result = probe.effect.delay(marker=marker, sleep=0.5)

    wait_until(
        lambda: TaskResult.objects.filter(task_id=result.id, status="STARTED").exists(),
        timeout=20,
        interval=0.02,
        what="STARTED state",
    )
    assert result.get(timeout=20) == marker
    stored = TaskResult.objects.get(task_id=result.id)
    assert stored.status == "SUCCESS"
    assert stored.task_name == "probe.effect"
    assert marker in stored.task_kwargs
    assert ProbeEffect.objects.filter(marker=marker).count() == 1


def test_transient_error_is_retried_with_growing_jittered_delays_then_succeeds(marker):
    result = probe.flaky.delay(marker=marker, failures=2)

    assert result.get(timeout=30) == "recovered"
    executions = list(ProbeExecution.objects.filter(marker=marker).order_by("retries"))
    assert [e.retries for e in executions] == [0, 1, 2]
    # The countdown of retry n is its ETA minus the moment attempt n-1 failed.
    countdowns = [
        (datetime.fromisoformat(later.eta) - earlier.finished_at).total_seconds()
        for earlier, later in zip(executions, executions[1:], strict=False)
    ]
    base = probe.flaky.retry_backoff_base  # ceilings: base*1, base*2; each in [ceiling/2, ceiling]
    assert base / 2 - 0.05 <= countdowns[0] <= base + 0.05
    assert base - 0.05 <= countdowns[1] <= 2 * base + 0.05
    assert countdowns[1] > countdowns[0]
    assert not DeadLetter.objects.filter(task_id=result.id).exists()


def test_transient_error_every_time_stops_at_the_bound_and_becomes_a_dead_letter(marker):
    result = probe.always_transient.delay(marker=marker)

    letter = _dead_letter(result.id)
    assert ProbeExecution.objects.filter(marker=marker).count() == probe.always_transient.max_retries + 1
    assert letter.attempts == probe.always_transient.max_retries + 1
    assert letter.exception_type == "integrations.errors.TransientError"
    assert letter.first_failed_at < letter.last_failed_at
    # The dead letter is written first, then the FAILURE state.
    wait_until(
        lambda: TaskResult.objects.filter(task_id=result.id, status="FAILURE").exists(),
        timeout=10,
        what="the FAILURE state",
    )


@pytest.mark.parametrize(
    ("task", "exception_type"),
    [
        (probe.permanent, "integrations.errors.PermanentError"),
        (probe.invalid_argument, "jobs.errors.InvalidArgument"),
        (probe.value_error, "builtins.ValueError"),  # any other exception: a bug, dead-lettered too
    ],
)
def test_permanent_failure_is_not_retried_and_is_a_dead_letter_at_once(marker, task, exception_type):
    result = task.delay(marker=marker)

    letter = _dead_letter(result.id)
    assert ProbeExecution.objects.filter(marker=marker).count() == 1
    assert letter.attempts == 1
    assert letter.exception_type == exception_type
    assert letter.kwargs == {"marker": marker}
    assert letter.task_name == task.name
    assert "Traceback" in letter.traceback and "probe/tasks.py" in letter.traceback
    assert letter.status == DeadLetter.Status.OPEN


def test_data_not_ready_yet_is_retried_like_a_transient_error_then_runs(marker):
    result = probe.not_ready_yet.delay(marker=marker, failures=1)

    assert result.get(timeout=30) == "ready"
    assert [e.retries for e in ProbeExecution.objects.filter(marker=marker).order_by("pk")] == [0, 1]
    assert not DeadLetter.objects.filter(task_id=result.id).exists()


def test_rate_limited_job_is_rescheduled_without_spending_its_retries(marker):
    # max_retries is 1, yet three rate-limit deferrals in a row do not exhaust it.
    result = probe.rate_limited.delay(marker=marker, times=3)

    assert result.get(timeout=30) == "ran"
    assert [e.retries for e in ProbeExecution.objects.filter(marker=marker).order_by("pk")] == [0, 0, 0, 0]
    assert not DeadLetter.objects.filter(task_id=result.id).exists()


def test_wrong_keyword_argument_is_refused_when_enqueued():
    with pytest.raises(TypeError):
        probe.effect.delay(markr="typo")


def test_phone_numbers_in_arguments_are_masked_in_stored_results_but_reach_the_task(marker):
    number = "+14165550123"
    result = probe.effect.delay(marker=f"{marker}:{number}")

    assert result.get(timeout=20) == f"{marker}:{number}"  # the job saw the real argument
    stored = TaskResult.objects.get(task_id=result.id)
    assert number not in stored.task_kwargs
    assert "+1416*****23" in stored.task_kwargs


def test_task_sent_event_for_flower_carries_masked_arguments_and_leaves_ids_and_dates_alone():
    # A number in an argument the task does not seal (a sealed one shows <sealed>: test_sealing.py).
    message = app.amqp.as_task_v2(
        "job-1",
        probe.effect.name,
        kwargs={"marker": "call +14165550123", "invoice_id": 12345678, "due": "2026-11-23"},
        create_sent_event=True,
    )

    shown = message.sent_event["kwargs"]
    assert "+14165550123" not in shown and "+1416*****23" in shown
    assert "12345678" in shown and "2026-11-23" in shown
    assert message.body[1]["marker"] == "call +14165550123"  # the job itself gets the real number
