"""GET /metrics: each metric moves when its cause happens (a job fails, a dead letter appears,
a queue fills, a request is answered, a beat ticks, an outbox job is not completed)."""

import pytest
from django.utils import timezone

from integrations.cache import cache_get
from jobs.models import DeadLetter, OutboxMessage
from tests.conftest import broker_client
from tests.ops.conftest import sample, scrape
from tests.support.processes import start_beat, wait_until


@pytest.mark.processes
def test_a_failed_job_moves_task_outcomes_durations_and_open_dead_letters(
    client, ops_workers, ops_broker, metrics_root, marker
):
    # Like ops/systemd/platform-worker@.service: the worker's pool children write metric files
    # to its own directory under METRICS_DIR, which the web side merges.
    worker_dir = metrics_root / "worker-default"
    worker_dir.mkdir()
    ops_workers("metrics", "default", PROMETHEUS_MULTIPROC_DIR=str(worker_dir))
    outcome = {"task": "probe.permanent", "queue": "default", "state": "FAILURE"}
    before = scrape(client)

    result = broker_client(ops_broker.url).send_task(
        "probe.permanent", kwargs={"marker": marker}, queue="default"
    )

    counted = sample(before, "platform_task_outcomes_total", **outcome)
    timed = sample(before, "platform_task_duration_seconds_count", task="probe.permanent", queue="default")
    # The worker counts the outcome, then records the duration: a scrape may fall between the two.
    after = wait_until(
        lambda: (
            sample(s := scrape(client), "platform_task_outcomes_total", **outcome) > counted
            and sample(s, "platform_task_duration_seconds_count", task="probe.permanent", queue="default")
            > timed
            and s
        ),
        timeout=30,
        what="the FAILURE outcome to be counted and timed",
    )
    assert (
        sample(after, "platform_task_outcomes_total", **outcome)
        == sample(before, "platform_task_outcomes_total", **outcome) + 1
    )
    assert sample(after, "platform_task_duration_seconds_count", task="probe.permanent", queue="default") == (
        sample(before, "platform_task_duration_seconds_count", task="probe.permanent", queue="default") + 1
    )
    assert DeadLetter.objects.filter(task_id=result.id).exists()
    open_letters = "platform_dead_letters_open_total"
    assert sample(after, open_letters) == sample(before, open_letters) + 1
    assert sample(after, "platform_dead_letters_open", task="probe.permanent") == 1
    assert list(worker_dir.glob("*.db")), "the worker wrote no metric file"


@pytest.mark.django_db
def test_queue_depth_moves_when_a_queue_fills(client, ops_broker):
    before = scrape(client)
    assert sample(before, "platform_queue_depth", queue="reports") == 0
    assert sample(before, "platform_queue_oldest_message_age_seconds", queue="reports") == 0

    publisher = broker_client(ops_broker.url)
    for n in range(3):
        publisher.send_task("probe.effect", kwargs={"marker": f"waiting-{n}"}, queue="reports")

    filled = scrape(client)
    assert sample(filled, "platform_queue_depth", queue="reports") == 3
    assert sample(filled, "platform_queue_depth", queue="default") == 0
    assert sample(filled, "platform_queue_oldest_message_age_seconds", queue="default") == 0


@pytest.mark.django_db
def test_oldest_message_age_is_reported_where_the_broker_shows_it_and_never_invented(client, ops_broker):
    publisher = broker_client(ops_broker.url)
    publisher.send_task("probe.effect", kwargs={"marker": "waiting"}, queue="reports")

    filled = scrape(client)
    first_age = sample(filled, "platform_queue_oldest_message_age_seconds", queue="reports", default=None)
    known = sample(filled, "platform_queue_oldest_message_age_known", queue="reports", default=None)
    if ops_broker.kind == "rabbitmq":
        # A quorum queue shows its oldest message only by delivering it: no age, and said so.
        assert first_age is None and known == 0
        assert sample(filled, "platform_queue_oldest_message_age_known", queue="default") == 1
        return
    assert first_age is not None and first_age >= 0 and known == 1
    # Nobody consumes: the oldest message keeps ageing.
    wait_until(
        lambda: (
            sample(scrape(client), "platform_queue_oldest_message_age_seconds", queue="reports")
            > first_age + 0.2
        ),
        timeout=5,
        what="the oldest message to age",
    )


@pytest.mark.django_db
def test_broker_down_is_reported_without_failing_the_scrape(client, ops_broker):
    ops_broker.stop()

    samples = scrape(client)

    assert sample(samples, "platform_metrics_collector_up", collector="broker") == 0
    assert sample(samples, "platform_metrics_collector_up", collector="database") == 1


@pytest.mark.django_db
def test_answered_requests_are_counted_and_timed_per_route(client, ops_broker):
    labels = {"method": "GET", "route": "admin/login/", "status": "200"}
    before = scrape(client)

    assert client.get("/admin/login/").status_code == 200

    after = scrape(client)
    counted = sample(before, "platform_http_requests_total", **labels)
    assert sample(after, "platform_http_requests_total", **labels) == counted + 1
    timed = {"method": "GET", "route": "admin/login/"}
    assert sample(after, "platform_http_request_duration_seconds_count", **timed) == (
        sample(before, "platform_http_request_duration_seconds_count", **timed) + 1
    )


@pytest.mark.django_db
def test_cache_misses_counted_by_integrations_appear(client, ops_broker):
    labels = {"kind": "vehicle_history", "result": "miss"}
    before = scrape(client)

    cache_get("vehicle_history", "NO-SUCH-VIN")

    assert sample(scrape(client), "platform_cache_requests_total", **labels) == (
        sample(before, "platform_cache_requests_total", **labels) + 1
    )


@pytest.mark.django_db
def test_outbox_backlog_counts_messages_whose_job_is_not_completed(client, ops_broker):
    before = sample(scrape(client), "platform_outbox_backlog", default=None)
    assert before is not None

    OutboxMessage.objects.create(task_name="probe.effect", kwargs={"marker": "x"})
    # Published but not completed is still open (jobs.outbox.outbox_backlog): the broker may
    # have lost it, and the relay republishes it.
    now = timezone.now()
    OutboxMessage.objects.create(task_name="probe.effect", kwargs={"marker": "y"}, published_at=now)
    OutboxMessage.objects.create(
        task_name="probe.effect", kwargs={"marker": "z"}, published_at=now, completed_at=now
    )

    assert sample(scrape(client), "platform_outbox_backlog") == before + 2


@pytest.mark.processes
def test_beat_heartbeat_age_appears_once_beat_ticks(client, database_url, ops_broker):
    assert sample(scrape(client), "platform_beat_heartbeat_age_seconds", default=None) is None

    beat = start_beat(ops_broker.env(database_url=database_url), name="beat")
    try:
        (age,) = wait_until(
            lambda: (
                (age := sample(scrape(client), "platform_beat_heartbeat_age_seconds", default=None))
                is not None
                and (age,)
            ),
            timeout=30,
            what="a beat heartbeat",
        )
    finally:
        beat.stop()
    assert 0 <= age < 30
