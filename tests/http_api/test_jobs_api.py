"""POST /api/v1/jobs and GET /api/v1/jobs/<id>, GET /api/v1/tasks: every status and error code of
docs/contract.md section 3, in the contract's error shape, with per-field details."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import psycopg2
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_redis import get_redis_connection

from http_api import ratelimit, registry
from http_api.keys import create_api_key
from http_api.models import AcceptedJob, IdempotencyRecord
from http_api.services import purge_expired
from messaging.models import BulkBatch, WhatsAppMessage
from tests.http_api.conftest import ApiKeyFixture, assert_error, post_job
from tests.support.processes import wait_until

pytestmark = pytest.mark.django_db

VIN = "1HGCM82633A004352"


def test_tasks_lists_every_declared_task_with_its_queue_and_argument_schema(api):
    response = api.get("/api/v1/tasks")

    assert response.status_code == 200
    tasks = {task["name"]: task for task in response.json()}
    assert set(tasks) == set(registry.TRIGGERABLE)
    vin_task = tasks["tasks.reports.fetch_vehicle_history"]
    assert vin_task["queue"] == "reports"
    assert vin_task["schema"]["required"] == ["vin"]
    assert vin_task["schema"]["additionalProperties"] is False
    assert vin_task["schema"]["properties"]["vin"]["pattern"] == "^[A-HJ-NPR-Z0-9]{17}$"
    bulk = tasks["tasks.notifications.send_bulk_whatsapp_notifications"]["schema"]["properties"]["recipients"]
    assert bulk["maxItems"] == 5000 and bulk["items"]["pattern"].startswith("^\\+")
    assert tasks["tasks.notifications.send_whatsapp_message"]["queue"] == "notifications"


def test_a_valid_job_is_accepted_with_202_and_reads_back_as_pending(api):
    response = post_job(api, {"task": "tasks.reports.fetch_vehicle_history", "kwargs": {"vin": VIN}})

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["task"] == "tasks.reports.fetch_vehicle_history"
    assert body["state"] == "PENDING"
    assert body["status_url"] == f"/api/v1/jobs/{body['id']}"
    uuid.UUID(body["id"])
    status = api.get(body["status_url"])
    assert status.status_code == 200
    assert status.json() | {"date_created": None} == {
        "id": body["id"],
        "task": "tasks.reports.fetch_vehicle_history",
        "state": "PENDING",
        "result": None,
        "error": None,
        "retries": 0,
        "dead_letter": False,
        "date_created": None,
        "date_done": None,
        "progress": None,
    }


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer pk_0000000_short",
        "Bearer pk_deadbeef_" + "A" * 43,
    ],
)
def test_requests_without_a_valid_api_key_are_401(db, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    client = Client(**headers)

    for response in (
        client.get("/api/v1/tasks"),
        post_job(client, {"task": "x"}),
        client.get(f"/api/v1/jobs/{uuid.uuid4()}"),
    ):
        assert_error(response, 401, "unauthorized")
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_body_that_is_not_json_is_400_invalid_json(api):
    for body in (b"{not json", b'{"task": NaN}', "\udcff".encode("utf-8", "surrogatepass")):
        assert_error(post_job(api, body), 400, "invalid_json")


def test_a_json_body_that_is_not_an_object_is_400_invalid_json(api):
    for body in ([], "tasks.fx.update_exchange_rates", 42):
        assert_error(post_job(api, body), 400, "invalid_json")


def test_an_unknown_task_is_404_unknown_task_and_nothing_is_recorded(api):
    details = assert_error(post_job(api, {"task": "tasks.billing.delete_everything"}), 404, "unknown_task")

    assert details == {"task": "tasks.billing.delete_everything"}
    assert not AcceptedJob.objects.exists()


def _fields(response) -> dict[str, str]:
    details = assert_error(response, 400, "invalid_arguments")
    return details["fields"]


def test_a_wrong_phone_number_is_named_with_the_expected_format(api):
    fields = _fields(
        post_job(
            api,
            {
                "task": "tasks.notifications.send_whatsapp_message",
                "kwargs": {"to": "416-555-0123", "body": "hi"},
            },
        )
    )

    assert fields == {"kwargs.to": "must be an E.164 phone number, e.g. +14165550123"}


def test_a_wrong_vin_is_named(api):
    fields = _fields(
        post_job(api, {"task": "tasks.reports.fetch_vehicle_history", "kwargs": {"vin": "1HGCM82633A00435O"}})
    )  # letter O

    assert fields == {"kwargs.vin": "must be a VIN: 17 letters and digits, without I, O or Q"}


def test_an_unknown_argument_is_named_and_missing_ones_are_required(api):
    fields = _fields(
        post_job(
            api,
            {
                "task": "tasks.notifications.send_whatsapp_message",
                "kwargs": {"to": "+14165550123", "colour": "red"},
            },
        )
    )

    assert fields == {"kwargs.colour": "unknown argument", "kwargs.body": "is required"}


def test_every_bad_recipient_of_a_bulk_job_is_named_by_its_index(api):
    fields = _fields(
        post_job(
            api,
            {
                "task": "tasks.notifications.send_bulk_whatsapp_notifications",
                "kwargs": {"recipients": ["+14165550123", "nope", 5], "body": "hi"},
            },
        )
    )

    assert set(fields) == {"kwargs.recipients.1", "kwargs.recipients.2"}
    assert fields["kwargs.recipients.1"].startswith("must be an E.164")


def test_too_many_recipients_are_refused_counting_the_list_as_given(api):
    too_many = [f"+141655{n:05d}" for n in range(5000)] + ["+14165500000"]  # 5001, one repeated
    fields = _fields(
        post_job(
            api,
            {
                "task": "tasks.notifications.send_bulk_whatsapp_notifications",
                "kwargs": {"recipients": too_many, "body": "hi"},
            },
        )
    )
    assert "5000" in fields["kwargs.recipients"]


def test_a_bulk_send_to_5000_recipients_is_accepted(api):
    recipients = [f"+1416555{n:04d}" for n in range(5000)]
    response = post_job(
        api,
        {
            "task": "tasks.notifications.send_bulk_whatsapp_notifications",
            "kwargs": {"recipients": recipients, "body": "The port of Douala reopens Monday."},
        },
    )
    assert response.status_code == 202, response.content


def test_a_bulk_job_reads_back_with_its_batch_progress_counted_from_its_rows(api):
    accepted = post_job(
        api,
        {
            "task": "tasks.notifications.send_bulk_whatsapp_notifications",
            "kwargs": {"recipients": ["+14165550123"], "body": "hi"},
        },
    ).json()
    # What a worker records when the job starts: the batch and a row per recipient.
    job_id = accepted["id"]
    BulkBatch.objects.create(job_id=job_id, body="hi", total=7)
    statuses = ["sent"] * 3 + ["delivered", "failed", "cancelled", "queued"]
    WhatsAppMessage.objects.bulk_create(
        WhatsAppMessage(to=f"+1416555{n:04d}", body="hi", scope=job_id, idempotency_key=f"to:{n}", status=s)
        for n, s in enumerate(statuses)
    )

    progress = api.get(accepted["status_url"]).json()["progress"]

    assert {k: progress[k] for k in ("total", "sent", "failed", "skipped", "pending", "percent")} == {
        "total": 7,
        "sent": 4,
        "failed": 1,
        "skipped": 1,
        "pending": 1,
        "percent": 85,
    }
    assert progress["state"] == "running" and progress["finished_at"] is None


def test_the_recipient_cap_follows_the_setting(api, settings):
    settings.API_MAX_BULK_RECIPIENTS = 3
    body = {"task": "tasks.notifications.send_bulk_whatsapp_notifications", "kwargs": {"body": "hi"}}
    numbers = [f"+1416555{n:04d}" for n in range(4)]

    fields = _fields(post_job(api, body | {"kwargs": body["kwargs"] | {"recipients": numbers}}))

    assert fields == {"kwargs.recipients": "must name at most 3 recipients, got 4"}
    assert post_job(api, body | {"kwargs": body["kwargs"] | {"recipients": numbers[:3]}}).status_code == 202


def test_the_api_validates_with_the_model_the_worker_validates_with():
    """One declaration: each triggerable task's schema is its own signature's model."""
    for task in registry.TRIGGERABLE.values():
        assert task.arguments is task.task.arguments is not None
        assert task.arguments.model_config["extra"] == "forbid" and task.arguments.model_config["strict"]


def test_repeated_recipients_are_accepted(api):
    recipients = ["+14165550123", "+14165550124", "+14165550123"]
    response = post_job(
        api,
        {
            "task": "tasks.notifications.send_bulk_whatsapp_notifications",
            "kwargs": {"recipients": recipients, "body": "hi"},
        },
    )

    # Each number is sent to once: the bulk send's own rule (tests/tasks/test_notifications.py).
    assert response.status_code == 202, response.content


@pytest.mark.parametrize(
    ("task", "kwargs"),
    [
        ("tasks.notifications.send_whatsapp_message", {"to": "+14165550123", "body": " \n\t "}),
        (
            "tasks.notifications.send_bulk_whatsapp_notifications",
            {"recipients": ["+14165550123"], "body": "  "},
        ),
    ],
)
def test_a_blank_whatsapp_body_is_refused_naming_it(api, task, kwargs):
    fields = _fields(post_job(api, {"task": task, "kwargs": kwargs}))

    assert fields == {"kwargs.body": "must not be blank"}
    assert not AcceptedJob.objects.exists()


def test_types_are_exact_and_ids_positive(api):
    fields = _fields(post_job(api, {"task": "tasks.deals.send_lead_follow_up", "kwargs": {"lead_id": "7"}}))
    assert set(fields) == {"kwargs.lead_id"}
    fields = _fields(post_job(api, {"task": "tasks.deals.send_lead_follow_up", "kwargs": {"lead_id": 0}}))
    assert set(fields) == {"kwargs.lead_id"}


@pytest.mark.parametrize("countdown", [-1, 3601, "10", 1.5])
def test_countdown_outside_0_to_job_max_countdown_is_refused(api, countdown):
    fields = _fields(post_job(api, {"task": "tasks.fx.update_exchange_rates", "countdown": countdown}))

    assert set(fields) == {"countdown"}


def test_unknown_top_level_fields_and_a_missing_task_are_named(api):
    fields = _fields(post_job(api, {"kwargs": {}, "priority": 9}))

    assert fields == {"task": "is required", "priority": "unknown field"}


def test_an_idempotency_key_that_is_not_printable_ascii_is_named(api):
    fields = _fields(
        post_job(api, {"task": "tasks.fx.update_exchange_rates"}, HTTP_IDEMPOTENCY_KEY="x" * 300)
    )

    assert list(fields) == ["header.Idempotency-Key"]


def test_a_body_over_the_limit_is_413(api, settings):
    settings.API_MAX_BODY_BYTES = 1024
    body = {
        "task": "tasks.notifications.send_whatsapp_message",
        "kwargs": {"to": "+14165550123", "body": "x" * 2000},
    }

    details = assert_error(post_job(api, body), 413, "payload_too_large")

    assert details == {"max_bytes": 1024}
    assert not AcceptedJob.objects.exists()


def test_a_body_over_djangos_own_limit_is_413_too(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 512
    body = {"task": "tasks.fx.update_exchange_rates", "kwargs": {"pad": "x" * 1000}}

    assert_error(post_job(api, body), 413, "payload_too_large")


def test_an_unknown_job_id_is_404_not_found(api):
    for job_id in (str(uuid.uuid4()), "not-a-uuid"):
        assert_error(api.get(f"/api/v1/jobs/{job_id}"), 404, "not_found")


def test_other_paths_under_the_api_answer_404_in_the_error_shape(api):
    assert_error(api.get("/api/v1/nothing-here"), 404, "not_found")


def test_the_same_idempotency_key_and_body_return_the_first_job(api):
    body = {"task": "tasks.reports.fetch_vehicle_history", "kwargs": {"vin": VIN}, "countdown": 60}
    first = post_job(api, body, HTTP_IDEMPOTENCY_KEY="order-42")
    # Same body, other key order and spacing.
    again = post_job(
        api,
        json.dumps(
            {"countdown": 60, "kwargs": {"vin": VIN}, "task": "tasks.reports.fetch_vehicle_history"}, indent=2
        ),
        HTTP_IDEMPOTENCY_KEY="order-42",
    )

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert AcceptedJob.objects.count() == 1


def test_the_same_idempotency_key_with_another_body_is_409(api):
    first = post_job(
        api,
        {"task": "tasks.reports.fetch_vehicle_history", "kwargs": {"vin": VIN}},
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    other = post_job(
        api,
        {"task": "tasks.reports.fetch_vehicle_history", "kwargs": {"vin": "2" + VIN[1:]}},
        HTTP_IDEMPOTENCY_KEY="k1",
    )

    details = assert_error(other, 409, "idempotency_conflict")
    assert details == {"job_id": first.json()["id"]}
    assert AcceptedJob.objects.count() == 1


def test_idempotency_keys_are_per_api_key(api, db):
    other = Client(**ApiKeyFixture(*create_api_key(name="other-service")).header)
    body = {"task": "tasks.fx.update_exchange_rates"}

    assert (
        post_job(api, body, HTTP_IDEMPOTENCY_KEY="k").json()["id"]
        != post_job(other, body, HTTP_IDEMPOTENCY_KEY="k").json()["id"]
    )


def test_an_idempotency_key_expires_after_24_hours(api):
    body = {"task": "tasks.fx.update_exchange_rates"}
    first = post_job(api, body, HTTP_IDEMPOTENCY_KEY="daily").json()["id"]
    IdempotencyRecord.objects.update(created_at=IdempotencyRecord.objects.get().created_at.replace(year=2000))

    again = post_job(api, body, HTTP_IDEMPOTENCY_KEY="daily")

    assert again.status_code == 202 and again.json()["id"] != first
    assert "Idempotent-Replayed" not in again
    assert IdempotencyRecord.objects.get().job_id == uuid.UUID(again.json()["id"])


def test_purge_deletes_expired_idempotency_keys(api):

    post_job(api, {"task": "tasks.fx.update_exchange_rates"}, HTTP_IDEMPOTENCY_KEY="old")
    post_job(api, {"task": "tasks.fx.update_exchange_rates"}, HTTP_IDEMPOTENCY_KEY="new")
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))

    assert purge_expired()["idempotency_keys"] == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


def test_rate_limit_per_api_key_is_429_with_retry_after(api, api_key, settings):
    settings.API_RATE_LIMIT = "3/m"
    statuses = [api.get("/api/v1/tasks").status_code for _ in range(3)]

    limited = api.get("/api/v1/tasks")

    assert statuses == [200, 200, 200]
    details = assert_error(limited, 429, "rate_limited")
    # 3 per minute: the next one fits in 20 s.
    assert 1 <= int(limited["Retry-After"]) <= 20
    assert details == {"retry_after": int(limited["Retry-After"])}
    assert_error(post_job(api, {"task": "tasks.fx.update_exchange_rates"}), 429, "rate_limited")


def test_the_rate_limit_is_shared_through_redis_not_per_process(api, api_key, settings):
    settings.API_RATE_LIMIT = "2/m"
    # Another web process spent this key's budget: all we share with it is Redis.
    for _ in range(2):
        assert ratelimit.take(f"key:{api_key.row.prefix}") == 0.0

    assert_error(api.get("/api/v1/tasks"), 429, "rate_limited")


def test_a_large_budget_is_leased_per_process_and_charged_to_the_shared_bucket(api_key, settings):
    # http_api/ratelimit.py: at 100,000/m (1,666/s) one round trip takes the 83 requests that fit in
    # 50 ms from the bucket in Redis; the next ones spend that lease without asking Redis.
    settings.API_RATE_LIMIT = "100000/m"
    bucket = f"key:{api_key.row.prefix}"
    ratelimit.reset(bucket)
    redis_client = get_redis_connection("default")
    interval_us = 60 * 1_000_000 / 100_000

    before = int(redis_client.time()[0] * 1_000_000 + redis_client.time()[1])
    assert ratelimit.take(bucket) == 0.0
    charged = int(redis_client.get(f"api-ratelimit:{bucket}"))
    for _ in range(9):
        assert ratelimit.take(bucket) == 0.0
    after_nine = int(redis_client.get(f"api-ratelimit:{bucket}"))

    assert ratelimit.lease_size(ratelimit.rate()) == 83
    assert charged - before >= 83 * interval_us  # the whole lease, charged at once
    assert after_nine == charged  # the nine came out of the lease
    wait_until(
        lambda: ratelimit.take(bucket) == 0.0 and int(redis_client.get(f"api-ratelimit:{bucket}")) > charged,
        timeout=2,
        what="a new lease once this one lapsed",
    )


def test_the_default_budget_is_never_leased(settings):
    settings.API_RATE_LIMIT = "600/m"  # one request per 100 ms: longer than a lease lives

    assert ratelimit.lease_size(ratelimit.rate()) == 1  # every request asks Redis


@pytest.mark.django_db(transaction=True)
def test_a_job_without_idempotency_key_costs_one_statement_whose_commit_is_not_awaited(api):
    # docs/contract.md section 3: a 202 means the broker holds the job; its acceptance row is then
    # written in one round trip, without BEGIN/COMMIT and without waiting for the disk
    # (jobs/async_commit.py), and still before the answer: the status URL says PENDING at once.
    post_job(api, {"task": "tasks.fx.update_exchange_rates"})  # the key row is now cached

    with CaptureQueriesContext(connection) as queries:
        response = post_job(api, {"task": "tasks.fx.update_exchange_rates"})

    assert response.status_code == 202
    assert [q["sql"].split(" ", 1)[0] for q in queries.captured_queries] == ["SET"]
    assert "synchronous_commit TO OFF; INSERT" in queries.captured_queries[0]["sql"]
    job_id = response.json()["id"]
    assert AcceptedJob.objects.filter(job_id=job_id).exists()
    assert api.get(f"/api/v1/jobs/{job_id}").json()["state"] == "PENDING"


@pytest.mark.django_db(transaction=True)
def test_a_job_accepted_on_a_connection_the_server_dropped_is_still_recorded(api):
    # http_api/services.py: no SELECT 1 before the acceptance row; the INSERT itself finds the
    # dead connection and writes the row once more on a fresh one, so the 202 keeps its promise.
    # The killing connection is opened first: the key row stays cached for at most a second
    # (keys.cache_seconds), and only the kill may stand between the two requests; once it is
    # done (the backend gone), the INSERT is certain to meet a dead connection.
    with psycopg2.connect(
        dbname=connection.settings_dict["NAME"],
        user=connection.settings_dict["USER"],
        host=connection.settings_dict["HOST"] or "127.0.0.1",
        port=connection.settings_dict["PORT"] or 5432,
        password=connection.settings_dict["PASSWORD"] or None,
    ) as other:
        other.autocommit = True
        killer = other.cursor()
        post_job(api, {"task": "tasks.fx.update_exchange_rates"})  # the key row is now cached
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        killer.execute("SELECT pg_terminate_backend(%s)", [pid])

        def gone() -> bool:
            killer.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
            return killer.fetchone() is None

        wait_until(gone, timeout=5, interval=0.005, what=f"backend {pid} to exit")
    other.close()

    response = post_job(api, {"task": "tasks.fx.update_exchange_rates"})

    assert response.status_code == 202, response.content
    assert AcceptedJob.objects.filter(job_id=response.json()["id"]).exists()
