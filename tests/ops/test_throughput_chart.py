"""The ops dashboard's chart of the last hour (jobs/operations/throughput.py) and the queues now against an
hour ago (jobs/operations/queue_history.py): the numbers drawn are the result rows' counts per minute,
queue and outcome; the query range-scans TaskResult's date_done index; the page's query count does not grow
with the rows or the task names; failing tasks link to their dead letters, queues to Flower."""

import random
import re
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.urls import reverse
from django_celery_results.models import TaskResult

from jobs.models import DeadLetter
from jobs.operations import queue_history, throughput
from jobs.queues import QUEUE_NAMES
from tests.conftest import broker_client
from tests.domain.test_index_usage import assert_uses_index
from tests.support.processes import free_port, wait_until
from tests.support.queries import assert_max_queries, count_queries

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 7, 30, 20, tzinfo=UTC)
SVG = re.compile(r'<svg id="throughput-chart".*?</svg>', re.S)


def finished(task_name: str, status: str, at: datetime, count: int = 1) -> None:
    """`count` result rows of `task_name` that finished at `at` (date_done is auto_now: set after)."""
    ids = [f"{task_name}-{status}-{at.timestamp()}-{n}-{random.random()}" for n in range(count)]
    TaskResult.objects.bulk_create(TaskResult(task_id=i, task_name=task_name, status=status) for i in ids)
    TaskResult.objects.filter(task_id__in=ids).update(date_done=at)


def series_of(svg_text: str) -> dict[tuple[str, str], dict]:
    root = ET.fromstring(svg_text)  # noqa: S314 the SVG our own code just rendered
    assert root.get("id") == "throughput-chart"
    found = {}
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        if g.get("class") == "series":
            found[(g.get("data-queue"), g.get("data-outcome"))] = {
                "values": [int(v) for v in g.get("data-values").split(",")],
                "total": int(g.get("data-total")),
            }
    return found


def _known_rows() -> None:
    minute = NOW.replace(second=0, microsecond=0)  # the window's last minute (index 59)
    finished("tasks.notifications.send_whatsapp_message", "SUCCESS", minute + timedelta(seconds=5), 3)
    finished(
        "tasks.notifications.send_whatsapp_message", "FAILURE", minute - timedelta(minutes=2, seconds=-40), 2
    )
    finished("tasks.payments.apply_stripe_event", "SUCCESS", minute - timedelta(minutes=59), 4)  # index 0
    finished("tasks.fx.update_exchange_rates", "FAILURE", minute - timedelta(minutes=10), 1)  # default
    finished("tasks.fx.update_exchange_rates", "SUCCESS", minute - timedelta(minutes=10, seconds=-59), 5)
    # Outside the window or not finished: never counted.
    finished("tasks.fx.update_exchange_rates", "SUCCESS", minute - timedelta(minutes=60, seconds=1), 7)
    finished("tasks.fx.update_exchange_rates", "STARTED", minute, 6)
    finished("tasks.fx.update_exchange_rates", "RETRY", minute, 6)


def expected(**at: int) -> list[int]:
    values = [0] * throughput.MINUTES
    for index, count in at.items():
        values[int(index[1:])] = count
    return values


def test_series_count_each_minute_queue_and_outcome_from_the_result_rows():
    _known_rows()

    svg = throughput.render_svg(throughput.last_hour(now=NOW))
    series = series_of(svg)

    assert set(series) == {(q, o) for q in QUEUE_NAMES for o in ("succeeded", "failed")}
    assert series[("notifications", "succeeded")]["values"] == expected(m59=3)
    assert series[("notifications", "failed")]["values"] == expected(m57=2)
    assert series[("payments", "succeeded")]["values"] == expected(m0=4)
    assert series[("default", "failed")]["values"] == expected(m49=1)
    assert series[("default", "succeeded")]["values"] == expected(m49=5)
    assert series[("default", "succeeded")]["total"] == 5
    for quiet in ("reports", "maintenance"):
        assert series[(quiet, "succeeded")]["total"] == series[(quiet, "failed")]["total"] == 0
    # Each outcome is drawn on its own scale: its tallest bar is its largest count.
    root = ET.fromstring(svg)  # noqa: S314 the SVG our own code just rendered
    assert (root.get("data-peak-succeeded"), root.get("data-peak-failed")) == ("5", "2")


def test_failing_tasks_are_listed_most_failures_first_with_their_queue():
    _known_rows()

    assert throughput.last_hour(now=NOW).failing_tasks == [
        {"task": "tasks.notifications.send_whatsapp_message", "queue": "notifications", "failed": 2},
        {"task": "tasks.fx.update_exchange_rates", "queue": "default", "failed": 1},
    ]


def test_the_hour_query_range_scans_the_date_done_index():
    # A week of results (the retention) at a realistic mix; the last hour is a sliver of it.
    rng = random.Random(5)
    names = ["tasks.fx.update_exchange_rates", "tasks.notifications.send_whatsapp_message", "tasks.reports.x"]
    rows = [
        TaskResult(
            task_id=f"t-{n}", task_name=rng.choice(names), status=rng.choice(["SUCCESS"] * 9 + ["FAILURE"])
        )
        for n in range(6000)
    ]
    TaskResult.objects.bulk_create(rows)
    for n in range(0, 6000, 500):
        TaskResult.objects.filter(task_id__in=[f"t-{i}" for i in range(n, n + 500)]).update(
            date_done=NOW - timedelta(minutes=rng.randint(0, 7 * 24 * 60))
        )
    start, end = throughput.window(NOW)

    assert_uses_index(
        throughput.outcome_counts(start=start, end=end),
        "django_cele_date_do_f59aad_idx",
        TaskResult._meta.db_table,
    )


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_the_dashboard_draws_the_chart_links_failing_tasks_to_dead_letters_and_queues_to_flower(
    admin_client, ops_broker, settings
):
    settings.FLOWER_URL = "http://flower.example:5555/"  # the admin serves it at /admin/flower/
    finished("tasks.notifications.send_whatsapp_message", "FAILURE", datetime.now(UTC), 2)

    page = admin_client.get(reverse("ops_dashboard")).content.decode()

    series = series_of(SVG.search(page).group(0))
    assert series[("notifications", "failed")]["values"][-1] == 2
    link = (
        f"{reverse('admin:jobs_deadletter_changelist')}?task_name=tasks.notifications.send_whatsapp_message"
    )
    assert f'href="{link}"' in page
    # The link lists that task's dead letters and no other's.
    for n, task_name in enumerate(
        ["tasks.notifications.send_whatsapp_message", "tasks.fx.update_exchange_rates"]
    ):
        now = datetime.now(UTC)
        DeadLetter.objects.create(
            task_id=f"dl-{n}",
            task_name=task_name,
            exception_type="X",
            first_failed_at=now,
            last_failed_at=now,
        )
    letters = admin_client.get(link).content.decode()
    assert "dl-0" in letters and "dl-1" not in letters
    for queue in QUEUE_NAMES:
        assert f'<a href="/admin/flower/broker" title="{queue} in Flower">{queue}</a>' in page


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_the_dashboard_query_count_does_not_grow_with_results_or_task_names(admin_client, ops_broker):
    admin_client.get(reverse("ops_dashboard"))  # session and permissions cached as in real use
    with count_queries() as empty:
        admin_client.get(reverse("ops_dashboard"))
    now = datetime.now(UTC)
    for n in range(40):
        finished(f"tasks.probe_{n}", "FAILURE" if n % 3 else "SUCCESS", now - timedelta(minutes=n), 3)

    with assert_max_queries(empty.count):
        response = admin_client.get(reverse("ops_dashboard"))

    assert response.status_code == 200
    assert (
        sum(series["total"] for series in series_of(SVG.search(response.content.decode()).group(0)).values())
        == 120
    )
    # session, user, the device that verified the session (its second factor: django-otp's
    # middleware), the chart (one query), recent failures, dead letters by task, schedules
    assert empty.count <= 7, empty.describe()


# --- Queue depth an hour ago ----------------------------------------------------------------------


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_the_nearest_sample_to_an_hour_ago_is_shown_beside_the_depth_now(admin_client, ops_broker):
    now = time.time()
    queue_history.record_sample({"default": 11, "notifications": 4}, at=now - 3900)
    queue_history.record_sample({"default": 7, "notifications": 9}, at=now - 3620)  # the nearest
    queue_history.record_sample({"default": 1, "notifications": 1}, at=now - 60)
    broker_client(ops_broker.url).send_task("probe.effect", kwargs={"marker": "x"}, queue="notifications")

    assert queue_history.depths_ago(3600, now=now)["depths"] == {"default": 7, "notifications": 9}
    page = admin_client.get(reverse("ops_dashboard")).content.decode()
    row = re.search(
        r"<tr>\s*<td><a [^>]*>notifications</a></td><td>(\d+)</td>\s*<td class=\"ops-hour-ago\">(\w+)<", page
    )
    assert row.groups() == ("1", "9")


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_no_sample_near_an_hour_ago_means_unknown_not_a_guess(ops_broker):
    now = time.time()
    queue_history.record_sample({"default": 3}, at=now - 2 * 3600)
    queue_history.record_sample({"default": 5}, at=now - 600)

    assert queue_history.depths_ago(3600, now=now) is None


def test_sampling_records_the_broker_depths_and_keeps_the_history_bounded(ops_broker):
    publisher = broker_client(ops_broker.url)
    for n in range(3):
        publisher.send_task("probe.effect", kwargs={"marker": f"s{n}"}, queue="reports")
    for _ in range(queue_history.SAMPLES_KEPT + 5):
        queue_history.record_sample({"default": 0})

    recorded = queue_history.sample_queue_depths()

    assert recorded["reports"] == 3 and set(recorded) == set(QUEUE_NAMES)
    client = queue_history.ops_redis()
    assert client.llen(queue_history.SAMPLES_KEY) == queue_history.SAMPLES_KEPT
    assert queue_history.depths_ago(0)["depths"] == recorded


@pytest.mark.rabbitmq
@pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)
def test_on_rabbitmq_with_redis_down_sampling_skips_the_sample_and_fails_nothing(ops_broker, settings):
    """docs/redis-outage.md: the every-minute sample is the one thing lost; the task still answers
    (no failure, no dead letter) and the dashboard's hour-ago column says unknown."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there

    recorded = queue_history.sample_queue_depths()

    assert set(recorded) == set(QUEUE_NAMES)
    with pytest.raises(redis.RedisError):
        queue_history.depths_ago(3600)  # the dashboard shows this section as unavailable


@pytest.mark.processes
@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_the_scheduled_task_records_a_sample_from_a_real_worker(ops_workers, ops_broker):
    ops_workers("sampler", "maintenance")
    publisher = broker_client(ops_broker.url)
    publisher.send_task("probe.effect", kwargs={"marker": "waiting"}, queue="payments")  # nobody consumes it

    publisher.send_task("tasks.maintenance.sample_queue_depths", queue="maintenance")

    sample = wait_until(lambda: queue_history.depths_ago(0), timeout=30, what="a queue-depth sample")
    assert sample["depths"]["payments"] == 1 and set(sample["depths"]) == set(QUEUE_NAMES)
