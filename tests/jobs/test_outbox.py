"""Durable enqueue: the job exists exactly when its transaction commits, survives a crash
between commit and publish and a broker that lost it, and runs (its effect happens) once."""

import json
from datetime import timedelta

import pytest
from celery.exceptions import NotRegistered
from django.conf import settings
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from django_celery_results.models import TaskResult

from jobs.models import DeadLetter, OutboxMessage
from jobs.outbox import enqueue_durably, relay_outbox
from tests.support.probe import tasks as probe
from tests.support.probe.models import ProbeEffect, ProbeExecution
from tests.support.processes import platform_env, run_django, start_worker, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _completed(job_id: str):
    return lambda: OutboxMessage.objects.filter(job_id=job_id, completed_at__isnull=False).first()


@pytest.mark.usefixtures("live_worker")
def test_durable_job_runs_once_after_commit_and_is_recorded_completed(marker):
    with transaction.atomic():
        job_id = enqueue_durably(probe.effect, marker=marker)
        assert OutboxMessage.objects.get(job_id=job_id).published_at is None  # not before commit

    message = wait_until(_completed(job_id), timeout=30, what="the durable job to complete")
    assert message.outcome == "SUCCESS" and message.published_at is not None
    assert TaskResult.objects.get(task_id=job_id).status == "SUCCESS"
    assert ProbeEffect.objects.filter(marker=marker).count() == 1


@pytest.mark.parametrize("task", [probe.effect, "probe.effect"], ids=["task", "name"])
def test_a_misspelt_keyword_raises_in_the_caller_naming_it_and_writes_no_outbox_row(task, marker):
    # As .delay() does (typing=True): the caller learns at once, not from a dead letter later.
    with pytest.raises(
        TypeError,
        match=(
            r"^probe\.effect: unknown argument 'markr'; missing argument 'marker' "
            r"\(it takes: marker, sleep\)$"
        ),
    ):
        with transaction.atomic():
            enqueue_durably(task, markr=marker)
    with pytest.raises(TypeError, match=r"missing argument 'marker'"):
        enqueue_durably(task, sleep=1.0)

    assert not OutboxMessage.objects.exists()


def test_an_unregistered_task_name_raises_in_the_caller_and_writes_no_outbox_row():
    with pytest.raises(NotRegistered):
        enqueue_durably("probe.no_such_task")

    assert not OutboxMessage.objects.exists()


def test_a_task_name_is_found_in_a_process_that_never_imported_the_task_modules(database_url, marker):
    # A script or a shell publishes by name (TaskName) without importing tasks/: checked all the same.
    env = platform_env(database_url=database_url, redis_url=settings.REDIS_URL)
    script = (
        "import sys\nfrom jobs.outbox import enqueue_durably\n"
        "assert 'tests.support.probe.tasks' not in sys.modules\n"
        "try:\n"
        f"    enqueue_durably('probe.effect', markr={marker!r})\n"
        "except TypeError as exc:\n"
        "    print('refused:', exc)\n"
    )
    ran = run_django(script, env)
    assert ran.returncode == 0, ran.stderr
    assert "refused: probe.effect: unknown argument 'markr'" in ran.stdout
    assert not OutboxMessage.objects.exists()


@pytest.mark.usefixtures("live_worker")
def test_rolled_back_transaction_leaves_no_job(marker):
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_durably(probe.effect, marker=marker)
        raise RuntimeError("the data it was about is rolled back")

    assert not OutboxMessage.objects.exists()
    # Nothing to relay either: the job never existed.
    assert relay_outbox() == {"published": 0, "republished": 0, "completed": 0, "failed": 0}


@pytest.mark.usefixtures("live_worker")
def test_durable_job_that_retries_is_completed_when_it_finally_succeeds(marker):
    job_id = enqueue_durably(probe.flaky, marker=marker, failures=1)

    message = wait_until(_completed(job_id), timeout=30, what="the retried durable job to complete")
    assert message.outcome == "SUCCESS"
    assert ProbeExecution.objects.filter(marker=marker).count() == 2


@pytest.mark.usefixtures("live_worker")
def test_durable_job_that_gives_up_is_completed_as_a_dead_letter(marker):
    job_id = enqueue_durably(probe.permanent, marker=marker)

    message = wait_until(_completed(job_id), timeout=30, what="the failing durable job to complete")
    assert message.outcome == "FAILURE"
    assert DeadLetter.objects.filter(task_id=job_id).exists()


@pytest.mark.processes
def test_process_killed_between_commit_and_publish_is_covered_by_the_relay(
    database_url, private_redis, marker
):
    env = platform_env(
        database_url=database_url, redis_url=private_redis.url, OUTBOX_PUBLISH_GRACE_SECONDS="0"
    )
    died = run_django(
        "import os\nfrom django.db import transaction\nfrom jobs.outbox import enqueue_durably\n"
        "with transaction.atomic():\n"
        "    # Registered first, so it runs right after COMMIT and before the publish.\n"
        "    transaction.on_commit(lambda: os._exit(9))\n"
        f"    enqueue_durably('probe.effect', marker={marker!r})\n",
        env,
    )
    assert died.returncode == 9
    message = OutboxMessage.objects.get()
    assert message.published_at is None  # committed, never published

    worker = start_worker(env, name="relay-target", concurrency=1)
    try:
        relayed = run_django(
            "from jobs.outbox import relay_outbox; import json; print(json.dumps(relay_outbox()))", env
        )
        assert json.loads(relayed.stdout.strip().splitlines()[-1])["published"] == 1, relayed.stderr
        wait_until(_completed(str(message.job_id)), timeout=30, what=f"the relayed job\n{worker.tail()}")
    finally:
        worker.stop()
    assert ProbeEffect.objects.filter(marker=marker).count() == 1
    assert ProbeExecution.objects.filter(marker=marker).count() == 1


@pytest.mark.processes
def test_job_lost_by_a_restarted_broker_is_republished_and_runs_once(database_url, private_redis, marker):
    env = platform_env(
        database_url=database_url, redis_url=private_redis.url, OUTBOX_REPUBLISH_AFTER_SECONDS="0"
    )
    published = run_django(
        f"from jobs.outbox import enqueue_durably; enqueue_durably('probe.effect', marker={marker!r})", env
    )
    assert published.returncode == 0, published.stderr
    assert OutboxMessage.objects.get().published_at is not None

    private_redis.restart()  # no persistence: the queued job is gone

    worker = start_worker(env, name="after-restart", concurrency=1)
    try:
        relayed = run_django(
            "from jobs.outbox import relay_outbox; import json; print(json.dumps(relay_outbox()))", env
        )
        assert json.loads(relayed.stdout.strip().splitlines()[-1])["republished"] == 1, relayed.stderr
        wait_until(
            _completed(str(OutboxMessage.objects.get().job_id)),
            timeout=30,
            what=f"the republished job\n{worker.tail()}",
        )
    finally:
        worker.stop()
    assert ProbeEffect.objects.filter(marker=marker).count() == 1


def test_idle_relay_sweep_costs_one_query(django_assert_num_queries):
    with override_settings(OUTBOX_REPUBLISH_AFTER_SECONDS=900):
        with django_assert_num_queries(1):
            relay_outbox()


def test_a_published_job_with_a_countdown_is_not_republished_before_its_eta(settings):

    settings.OUTBOX_REPUBLISH_AFTER_SECONDS = 60
    long_ago = timezone.now() - timedelta(hours=1)
    waiting = OutboxMessage.objects.create(
        task_name="probe.effect",
        kwargs={"marker": "later"},
        published_at=long_ago,
        eta=timezone.now() + timedelta(minutes=30),
    )

    assert relay_outbox()["republished"] == 0
    waiting.refresh_from_db()
    assert waiting.publish_attempts == 0
