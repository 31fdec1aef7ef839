"""Bulk sends followed as batches, on a real notifications worker with the production pool (threads)
and the fake Twilio: the send fans out to chunk jobs, its progress equals its recipient rows,
cancel (from the admin page) stops sending at once, retry failed re-sends only the failed."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db.models import Count
from django_celery_results.models import TaskResult

from identifiers import mask_phone
from jobs.task_names import TaskName
from messaging.batches import batch_progress
from messaging.models import BulkBatch, WhatsAppMessage
from tests.conftest import broker_client
from tests.factories import make_phone
from tests.support.fakes.twilio import INVALID_NUMBER, NO_WHATSAPP_NUMBER, NOT_MOBILE_NUMBER
from tests.support.probe.models import ProbeEffect
from tests.support.processes import platform_env, run_django, start_worker, wait_until
from tests.tasks.conftest import accepted_recipients

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes, pytest.mark.timeout(300)]

REFUSED = [INVALID_NUMBER, NOT_MOBILE_NUMBER, NO_WHATSAPP_NUMBER]


@pytest.fixture
def notifications_worker(database_url, private_redis, fake_twilio):
    """Starts the notifications worker as production runs it (threads, 16) with `RATE_LIMITS`."""
    workers = []

    def start(rate_limit: str = "", name: str = "notifications", queues: str = "notifications") -> None:
        env = _env(database_url, private_redis, fake_twilio, rate_limit=rate_limit)
        workers.append(start_worker(env, name=name, queues=queues, concurrency=16, pool="threads"))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()


def _env(database_url: str, private_redis, fake_twilio, *, rate_limit: str = "") -> dict[str, str]:
    return platform_env(
        database_url=database_url,
        redis_url=private_redis.url,
        **fake_twilio.settings(),
        RATE_LIMITS=f"twilio={rate_limit}" if rate_limit else "",
    )


def _post_as_admin(env: dict[str, str], path: str, username: str) -> int:
    """POST to an admin page as `username` from a process whose broker is the worker's (what the
    page enqueues must reach that worker)."""
    ran = run_django(
        "from django.conf import settings\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.test import Client\n"
        "from tests.support.two_factor import force_login_verified\n"
        "settings.ALLOWED_HOSTS = ['testserver']  # as pytest-django sets it\n"
        "client = Client()\n"
        # The test's admin_client used this period's code already: a session verified as a login
        # with both factors leaves it.
        f"force_login_verified(client, get_user_model().objects.get(username={username!r}))\n"
        f"print(client.post({path!r}).status_code)\n",
        env,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    return int(ran.stdout.strip().splitlines()[-1])


def _send_bulk(redis_url: str, recipients: list[str], **extra) -> str:
    job_id = str(uuid.uuid4())
    broker_client(redis_url).send_task(
        TaskName.SEND_BULK_WHATSAPP_NOTIFICATIONS,
        kwargs={"recipients": recipients, "body": "The port of Douala reopens Monday.", **extra},
        task_id=job_id,
        queue="notifications",
    )
    return job_id


def _batch(job_id: str, worker) -> BulkBatch:
    return wait_until(
        lambda: BulkBatch.objects.filter(job_id=job_id).first(),
        timeout=60,
        what=lambda: f"the batch of {job_id}\n{worker.tail()}",
    )


def _row_counts(job_id: str) -> dict[str, int]:
    rows = WhatsAppMessage.objects.filter(scope=job_id).values("status").annotate(n=Count("pk"))
    return {row["status"]: row["n"] for row in rows}


def _assert_progress_equals_rows(batch: BulkBatch) -> None:
    progress = batch_progress(batch)
    rows = _row_counts(batch.job_id)
    assert progress.total == sum(rows.values())
    assert progress.sent == sum(rows.get(s, 0) for s in ("sent", "delivered", "read", "undelivered"))
    assert progress.failed == rows.get("failed", 0)
    assert progress.cancelled == rows.get("cancelled", 0)
    assert progress.pending == rows.get("queued", 0) + rows.get("sending", 0)


def _wait_done(job_id: str, worker) -> dict:
    row = wait_until(
        lambda: TaskResult.objects.filter(task_id=job_id, status="SUCCESS").first(),
        timeout=180,
        interval=0.2,
        what=lambda: f"bulk job {job_id} to succeed\n{worker.tail()}",
    )
    return json.loads(row.result)


def test_a_fanned_out_send_reaches_everyone_once_and_its_progress_equals_its_rows(
    notifications_worker, private_redis, fake_twilio
):
    worker = notifications_worker(queues="notifications,default")  # default: the probe callback
    good = [make_phone(n) for n in range(1, 298)]
    job_id = _send_bulk(private_redis.url, good + REFUSED, on_complete="probe.batch_done")

    result = _wait_done(job_id, worker)
    callback = wait_until(
        lambda: ProbeEffect.objects.filter(marker=f"batch_done:{job_id}").count(),
        timeout=30,
        what=lambda: f"the batch callback to run\n{worker.tail()}",
    )

    batch = BulkBatch.objects.get(job_id=job_id)
    assert batch.chunks == 6 and batch.state == "done" and batch.finished_at is not None
    chunk_jobs = TaskResult.objects.filter(
        task_name=TaskName.SEND_BULK_WHATSAPP_CHUNK, result__contains=job_id
    )
    assert chunk_jobs.filter(status="SUCCESS").count() == 6
    assert result == {
        "recipients": 300,
        "sent": 297,
        "skipped": 0,
        "failed": 3,
        "resent_after_interruption": 0,
    }
    assert sorted(accepted_recipients(fake_twilio).values()) == [1] * 297
    progress = batch_progress(batch)
    assert (progress.sent, progress.failed, progress.pending, progress.percent) == (297, 3, 0, 100)
    _assert_progress_equals_rows(batch)
    assert callback == 1, "the batch callback ran once"


def test_cancel_from_the_admin_page_stops_sending_at_once_and_sent_stays_sent(
    notifications_worker, private_redis, fake_twilio, admin_client
):
    worker = notifications_worker(rate_limit="20/s")  # 300 recipients: about 15 s of sending
    recipients = [make_phone(n) for n in range(1, 301)]
    job_id = _send_bulk(private_redis.url, recipients)
    batch = _batch(job_id, worker)
    wait_until(
        lambda: len(fake_twilio.messages) >= 40,
        timeout=60,
        what=lambda: f"40 messages sent\n{worker.tail()}",
    )
    assert batch_progress(batch).state in ("running", "paused")

    response = admin_client.post(f"/admin/messaging/bulkbatch/{batch.pk}/cancel/")
    sent_when_cancel_returned = len(fake_twilio.sent())

    assert response.status_code == 302
    # Every chunk job comes back (from its rate-limit countdown) and ends on seeing the cancel;
    # then the bulk job does.
    wait_until(
        lambda: (
            TaskResult.objects.filter(
                task_name=TaskName.SEND_BULK_WHATSAPP_CHUNK, result__contains=job_id, status="SUCCESS"
            ).count()
            == batch.chunks
        ),
        timeout=120,
        what=lambda: f"every chunk job to end\n{worker.tail()}",
    )
    _wait_done(job_id, worker)
    batch.refresh_from_db()
    progress = batch_progress(batch)
    assert len(fake_twilio.sent()) == sent_when_cancel_returned, "nothing sent after cancel returned"
    assert progress.state == "cancelled"
    assert progress.sent == len(fake_twilio.messages) == sent_when_cancel_returned
    assert progress.cancelled == 300 - progress.sent and progress.pending == 0
    assert sorted(accepted_recipients(fake_twilio).values()) == [1] * progress.sent
    _assert_progress_equals_rows(batch)
    page = admin_client.get(f"/admin/messaging/bulkbatch/{batch.pk}/change/").content.decode()
    assert 'id="batch-progress"' in page and 'data-state="cancelled"' in page


def test_retry_failed_from_the_admin_page_resends_only_the_failed(
    notifications_worker, database_url, private_redis, fake_twilio, admin_client, admin_user
):
    worker = notifications_worker()
    good = [make_phone(n) for n in range(1, 58)]
    job_id = _send_bulk(private_redis.url, good + REFUSED)
    _wait_done(job_id, worker)
    batch = BulkBatch.objects.get(job_id=job_id)
    assert batch_progress(batch).failed == 3
    page = admin_client.get(f"/admin/messaging/bulkbatch/{batch.pk}/change/").content.decode()
    assert mask_phone(INVALID_NUMBER) in page
    assert INVALID_NUMBER not in page, "failed recipients are shown masked"
    assert "not a valid phone number" in page.replace("&#x27;", "'"), "with Twilio's reason"
    requests_before = len(fake_twilio.sent())
    # The recipients fixed their numbers: the fake Twilio accepts them now.
    for number in REFUSED:
        fake_twilio.refused.pop(number)

    status = _post_as_admin(
        _env(database_url, private_redis, fake_twilio),
        f"/admin/messaging/bulkbatch/{batch.pk}/retry-failed/",
        admin_user.username,
    )

    assert status == 302
    wait_until(
        lambda: (
            BulkBatch.objects.filter(pk=batch.pk, state="done").exists()
            and batch_progress(BulkBatch.objects.get(pk=batch.pk)).sent == 60
        ),
        timeout=120,
        what=lambda: f"the retried batch to be done\n{worker.tail()}",
    )
    retried = [r.form.get("To", "").removeprefix("whatsapp:") for r in fake_twilio.sent()[requests_before:]]
    assert sorted(retried) == sorted(REFUSED), "only the failed recipients were sent again"
    assert sorted(accepted_recipients(fake_twilio).values()) == [1] * 60
    batch.refresh_from_db()
    _assert_progress_equals_rows(batch)
