"""The backoff formula itself: exponential, jittered, bounded, honouring Retry-After."""

import statistics

import pytest
from celery import Task

from integrations.errors import TransientError
from jobs.task_base import deferred_countdown, platform_task
from tests.support.probe.tasks import flaky


def _countdowns(task: Task, retries: int, exc=None, samples: int = 200) -> list[float]:
    task.push_request(retries=retries)
    try:
        return [task.retry_countdown(exc) for _ in range(samples)]
    finally:
        task.pop_request()


def test_countdown_doubles_per_attempt_within_half_to_full_ceiling():
    base = flaky.retry_backoff_base
    for retries in range(5):
        values = _countdowns(flaky, retries)
        ceiling = base * 2**retries
        assert min(values) >= ceiling / 2 and max(values) <= ceiling


def test_countdown_is_jittered():
    values = _countdowns(flaky, 3)
    assert len(set(values)) > 150
    assert statistics.pstdev(values) > 0.1


def test_countdown_never_exceeds_the_bound():
    assert max(_countdowns(flaky, 30)) <= flaky.retry_backoff_max


def test_countdown_honours_the_providers_retry_after():
    exc = TransientError("slow down", provider="twilio", code=429, retry_after=42)
    assert min(_countdowns(flaky, 0, exc)) >= 42


def test_a_soft_time_limit_at_or_above_the_hard_one_is_refused_at_declaration():
    with pytest.raises(ValueError, match="soft_time_limit"):
        platform_task(name="probe.misdeclared", soft_time_limit=60, time_limit=30)


def test_rate_limited_jobs_are_spread_over_the_next_window_not_woken_together():
    waits = [deferred_countdown(2.0) for _ in range(500)]

    assert min(waits) >= 2.0 and max(waits) <= 4.0
    assert sum(1 for w in waits if w > 3.0) > 150  # spread, not bunched at the limiter's wait
