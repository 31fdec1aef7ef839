"""Dead letters in admin: replay runs the job again under its id; done effects are not redone."""

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_results.models import TaskResult

from jobs.dead_letters import ReplayFailed, replay_dead_letters
from jobs.models import DeadLetter
from tests.support.probe import tasks as probe
from tests.support.probe.models import ProbeEffect, ProbeExecution
from tests.support.processes import free_port, platform_env, run_django, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_worker")]


def _dead_letter(task_id: str) -> DeadLetter:
    return wait_until(
        lambda: DeadLetter.objects.filter(task_id=task_id).first(), timeout=30, what="a dead letter"
    )


def test_admin_replay_action_reruns_the_job_and_does_not_repeat_its_recorded_effect(admin_client, marker):
    result = probe.effect_then_fail.delay(marker=marker)
    letter = _dead_letter(result.id)
    assert ProbeEffect.objects.filter(marker=marker).count() == 1

    response = admin_client.post(
        reverse("admin:jobs_deadletter_changelist"),
        {"action": "replay_selected", "_selected_action": [letter.pk]},
    )
    assert response.status_code == 302

    wait_until(
        lambda: TaskResult.objects.filter(task_id=result.id, status="SUCCESS").exists(),
        timeout=30,
        what="the replayed job to succeed",
    )
    assert result.get(timeout=5) == "done"
    assert ProbeExecution.objects.filter(marker=marker, job_id=result.id).count() == 2
    assert ProbeEffect.objects.filter(marker=marker).count() == 1
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.REPLAYED
    assert letter.replay_count == 1
    assert letter.resolved_by == "admin"


def test_replay_that_fails_again_reopens_the_same_dead_letter(admin_client, marker):
    result = probe.permanent.delay(marker=marker)
    letter = _dead_letter(result.id)

    admin_client.post(reverse("admin:jobs_deadletter_resolve", args=[letter.pk]), {"do": "replay"})

    wait_until(
        lambda: ProbeExecution.objects.filter(marker=marker).count() == 2,
        timeout=30,
        what="the replay to run",
    )
    wait_until(
        lambda: DeadLetter.objects.get(pk=letter.pk).status == DeadLetter.Status.OPEN,
        timeout=30,
        what="the dead letter to reopen",
    )
    letter.refresh_from_db()
    assert letter.attempts == 2 and letter.replay_count == 1
    assert DeadLetter.objects.filter(task_id=result.id).count() == 1


def test_discard_closes_a_dead_letter_without_running_it(admin_client, marker):
    result = probe.permanent.delay(marker=marker)
    letter = _dead_letter(result.id)

    admin_client.post(
        reverse("admin:jobs_deadletter_changelist"),
        {"action": "discard_selected", "_selected_action": [letter.pk]},
    )

    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.DISCARDED
    assert ProbeExecution.objects.filter(marker=marker).count() == 1


def test_dead_letter_page_shows_the_traceback_and_replay_buttons(admin_client, marker):
    letter = _dead_letter(probe.value_error.delay(marker=marker).id)

    page = admin_client.get(reverse("admin:jobs_deadletter_change", args=[letter.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "Traceback" in html and "ValueError" in html
    assert 'value="replay"' in html and 'value="discard"' in html


def test_replay_with_the_broker_down_leaves_the_dead_letter_open(database_url):
    now = timezone.now()
    letter = DeadLetter.objects.create(
        task_id="job-to-replay",
        task_name="probe.effect",
        kwargs={"marker": "m"},
        exception_type="E",
        first_failed_at=now,
        last_failed_at=now,
    )
    env = platform_env(database_url=database_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    code = (
        "from jobs.dead_letters import ReplayFailed, replay_dead_letters\n"
        "from jobs.models import DeadLetter\n"
        "try:\n"
        "    replay_dead_letters(list(DeadLetter.objects.all()), by='ops')\n"
        "except ReplayFailed as exc:\n"
        "    print('refused:', exc)\n"
    )
    out = run_django(code, env, timeout=60)

    assert "refused:" in out.stdout, out.stderr[-2000:]
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.OPEN and letter.replay_count == 0


@pytest.mark.parametrize(
    ("task_name", "kwargs", "why"),
    [
        ("probe.effect", {"markr": "m"}, "unknown argument 'markr'"),
        ("probe.no_longer_registered", {}, "NotRegistered"),
    ],
)
def test_replay_of_a_job_its_task_would_refuse_is_refused_in_the_caller_and_stays_open(
    task_name, kwargs, why
):
    # Checked as the outbox checks: the replay would only fail again in a worker.
    now = timezone.now()
    letter = DeadLetter.objects.create(
        task_id=f"job-{task_name}",
        task_name=task_name,
        kwargs=kwargs,
        exception_type="E",
        first_failed_at=now,
        last_failed_at=now,
    )

    with pytest.raises(ReplayFailed, match=why):
        replay_dead_letters([letter], by="ops")

    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.OPEN and letter.replay_count == 0
    assert not TaskResult.objects.filter(task_id=letter.task_id).exists()
