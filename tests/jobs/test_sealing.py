"""Sealed arguments (jobs/sealing.py): `Sealed[T]` in a task's signature is checked as T once
opened, with errors naming the argument; the message carries an envelope and shows <sealed>; the
outbox row and the message rows are sealed; `manage.py reseal` moves everything to the newest key,
so a dead letter recorded under key A replays after rotating to key B."""

from __future__ import annotations

import importlib
import io

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.core.management import CommandError, call_command
from django.db import connection
from django_celery_results.models import TaskResult

from jobs.arguments import E164Phone, arguments_model, validate_arguments
from jobs.dead_letters import ReplayFailed, replay_dead_letters
from jobs.errors import InvalidArgument
from jobs.models import DeadLetter, OutboxMessage
from jobs.outbox import enqueue_durably
from jobs.sealing import ENVELOPE_KEY, Sealed, seal, seal_arguments, unseal
from messaging.bulk import recipient_key
from messaging.models import WhatsAppMessage
from tasks.app import app
from tasks.notifications import send_bulk_whatsapp_notifications, send_whatsapp_message
from tests.support.fakes.twilio import twilio_error
from tests.support.processes import wait_until

NUMBER = "+14165550123"
TEXT = "Your Corolla has shipped"


@pytest.fixture
def key_a(settings) -> str:
    key = Fernet.generate_key().decode()
    settings.SEALED_ARGUMENT_KEYS = [key]
    return key


def _opens_with(key: str, envelope: dict) -> bool:
    try:
        Fernet(key).decrypt(envelope[ENVELOPE_KEY].encode())
    except Exception:
        return False
    return True


def _model(body):
    return arguments_model(body, task_name="tests.sealed")


def _send(self, to: Sealed[E164Phone], body: Sealed[str], count: int = 1):
    """A task body with two sealed arguments and one clear one."""


# --- Sealed[T] is checked as T, errors name the argument ---------------------------------------


def test_a_sealed_value_of_the_wrong_type_fails_naming_the_argument(key_a):
    with pytest.raises(InvalidArgument) as error:
        validate_arguments(_model(_send), (), {"to": seal(5), "body": seal(TEXT)})

    assert error.value.fields == {"to": "input should be a valid string"}


def test_a_sealed_value_its_type_refuses_fails_naming_the_argument(key_a):
    with pytest.raises(InvalidArgument) as error:
        validate_arguments(_model(_send), (), {"to": seal("6475550199"), "body": seal(TEXT)})

    assert list(error.value.fields) == ["to"] and "E.164" in error.value.fields["to"]
    assert "6475550199" not in str(error.value)  # the refused value is not repeated


def test_sealed_values_are_opened_for_the_body_and_others_pass_as_they_are(key_a):
    model = _model(_send)

    assert validate_arguments(model, (seal(NUMBER),), {"body": seal(TEXT), "count": 3}) == {
        "to": NUMBER,
        "body": TEXT,
        "count": 3,
    }
    # A job published before its task sealed the argument still runs.
    assert validate_arguments(model, (), {"to": NUMBER, "body": TEXT})["to"] == NUMBER


def test_a_value_sealed_under_a_key_no_longer_held_fails_naming_the_argument(key_a, settings):
    envelope = seal(NUMBER)
    settings.SEALED_ARGUMENT_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(InvalidArgument) as error:
        validate_arguments(_model(_send), (), {"to": envelope, "body": TEXT})

    assert list(error.value.fields) == ["to"]
    assert "SEALED_ARGUMENT_KEYS" in error.value.fields["to"]


def test_a_malformed_envelope_fails_naming_the_argument(key_a):
    with pytest.raises(InvalidArgument) as error:
        validate_arguments(_model(_send), (), {"to": {ENVELOPE_KEY: 5}, "body": TEXT})

    assert list(error.value.fields) == ["to"] and "malformed" in error.value.fields["to"]


@pytest.mark.parametrize(
    "annotation",
    [list[Sealed[str]], Sealed[str] | None, dict[str, Sealed[int]]],
    ids=["inside a list", "inside an optional", "inside a dict"],
)
def test_sealed_inside_an_argument_type_is_refused_naming_the_task_and_argument(annotation):
    def body(self, recipients):
        """A task body."""

    body.__annotations__ = {"recipients": annotation}

    with pytest.raises(TypeError, match=r"tests\.sealed: argument 'recipients': Sealed\[\.\.\.\] must be"):
        _model(body)


def test_sealed_takes_one_type():
    with pytest.raises(TypeError, match="Sealed takes one type"):
        Sealed[str, int]


def test_a_value_that_cannot_be_sealed_raises_in_the_caller_naming_the_argument(key_a):
    with pytest.raises(TypeError, match="argument 'to' cannot be sealed"):
        seal_arguments(_model(_send), (), {"to": object(), "body": TEXT})


def test_the_api_schema_of_a_sealed_argument_is_its_type_s():
    schema = send_whatsapp_message.arguments.model_json_schema()

    assert schema["properties"]["to"]["pattern"].startswith("^\\+")
    assert schema["required"] == ["to", "body"]


# --- The message ----------------------------------------------------------------------------------


def test_the_message_carries_envelopes_for_sealed_arguments_and_shows_them_sealed(key_a):
    message = app.amqp.as_task_v2(
        "job-1", send_whatsapp_message.name, (NUMBER,), {"body": TEXT, "vehicle_id": 7}
    )
    args, kwargs, _ = message.body

    assert _opens_with(key_a, args[0]) and _opens_with(key_a, kwargs["body"])
    assert kwargs["vehicle_id"] == 7
    assert message.headers["argsrepr"] == "(<sealed>,)"
    assert message.headers["kwargsrepr"] == "{'body': <sealed>, 'vehicle_id': 7}"
    assert NUMBER not in repr(message.body) and TEXT not in repr(message.body)


def test_a_list_of_recipients_is_sealed_as_one_value(key_a):
    message = app.amqp.as_task_v2(
        "job-2",
        send_bulk_whatsapp_notifications.name,
        (),
        {"recipients": [NUMBER, "+14165550124"], "body": TEXT},
    )
    _, kwargs, _ = message.body

    assert unseal(kwargs["recipients"]) == [NUMBER, "+14165550124"]
    assert message.headers["kwargsrepr"] == "{'recipients': <sealed>, 'body': <sealed>}"


def test_an_envelope_published_again_is_sealed_under_the_newest_key(key_a, settings):
    # A retry or a replay publishes the envelopes its request carried.
    envelope = seal(NUMBER)
    key_b = Fernet.generate_key().decode()
    settings.SEALED_ARGUMENT_KEYS = [key_b, key_a]

    message = app.amqp.as_task_v2("job-3", send_whatsapp_message.name, (), {"to": envelope, "body": TEXT})

    assert _opens_with(key_b, message.body[1]["to"])


# --- Rows --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_outbox_row_holds_sealed_arguments(key_a):
    job_id = enqueue_durably(send_whatsapp_message, to=NUMBER, body=TEXT, vehicle_id=None)

    kwargs = OutboxMessage.objects.get(job_id=job_id).kwargs
    assert _opens_with(key_a, kwargs["to"]) and _opens_with(key_a, kwargs["body"])
    assert kwargs["vehicle_id"] is None


def _stored(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608 -- column and table names from the test's own constants
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_message_row_stores_its_number_and_text_sealed_and_reads_them_clear(key_a):
    row = WhatsAppMessage.objects.create(to=NUMBER, body=TEXT, scope="job", idempotency_key="message")

    assert _stored("messaging_whatsappmessage", '"to"', row.pk).startswith("sealed:")
    assert _stored("messaging_whatsappmessage", "body", row.pk).startswith("sealed:")
    row = WhatsAppMessage.objects.get(pk=row.pk)
    assert (row.to, row.body) == (NUMBER, TEXT)


@pytest.mark.django_db
def test_a_sealed_column_cannot_be_searched(key_a):
    with pytest.raises(FieldError, match="messaging.WhatsAppMessage.to is sealed"):
        WhatsAppMessage.objects.filter(to=NUMBER).exists()


# --- Rotation ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reseal_moves_outbox_rows_dead_letters_and_columns_to_the_newest_key(key_a, settings):
    job_id = enqueue_durably(send_whatsapp_message, to=NUMBER, body=TEXT)
    letter = DeadLetter.objects.create(
        task_id="dead-1",
        task_name=send_whatsapp_message.name,
        args=[NUMBER],  # stored in clear before the argument was sealed: reseal seals it
        kwargs={"body": seal(TEXT)},
        exception_type="integrations.errors.PermanentError",
        first_failed_at="2026-01-01T00:00:00Z",
        last_failed_at="2026-01-01T00:00:00Z",
    )
    row = WhatsAppMessage.objects.create(to=NUMBER, body=TEXT, scope="job", idempotency_key="message")
    key_b = Fernet.generate_key().decode()
    settings.SEALED_ARGUMENT_KEYS = [key_b, key_a]

    out = io.StringIO()
    call_command("reseal", stdout=out)

    settings.SEALED_ARGUMENT_KEYS = [key_b]  # key A removed
    outbox_kwargs = OutboxMessage.objects.get(job_id=job_id).kwargs
    assert (unseal(outbox_kwargs["to"]), unseal(outbox_kwargs["body"])) == (NUMBER, TEXT)
    letter.refresh_from_db()
    assert (unseal(letter.args[0]), unseal(letter.kwargs["body"])) == (NUMBER, TEXT)
    assert WhatsAppMessage.objects.values_list("to", "body").get(pk=row.pk) == (NUMBER, TEXT)
    assert '"unopenable": 0' in out.getvalue()


@pytest.mark.django_db
def test_reseal_fails_naming_rows_no_key_opens(key_a, settings):
    letter = DeadLetter.objects.create(
        task_id="dead-2",
        task_name=send_whatsapp_message.name,
        kwargs={"to": seal(NUMBER), "body": seal(TEXT)},
        exception_type="x",
        first_failed_at="2026-01-01T00:00:00Z",
        last_failed_at="2026-01-01T00:00:00Z",
    )
    settings.SEALED_ARGUMENT_KEYS = [Fernet.generate_key().decode()]  # A dropped before resealing

    err = io.StringIO()
    with pytest.raises(CommandError, match="keep the key they were sealed with"):
        call_command("reseal", stdout=io.StringIO(), stderr=err)
    assert f"jobs.DeadLetter pk={letter.pk}" in err.getvalue()


@pytest.mark.django_db
def test_a_dead_letter_whose_key_was_dropped_is_not_replayed_and_says_which_argument(key_a, settings):
    letter = DeadLetter.objects.create(
        task_id="dead-3",
        task_name=send_whatsapp_message.name,
        kwargs={"to": seal(NUMBER), "body": seal(TEXT)},
        exception_type="x",
        first_failed_at="2026-01-01T00:00:00Z",
        last_failed_at="2026-01-01T00:00:00Z",
    )
    settings.SEALED_ARGUMENT_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(
        ReplayFailed, match="argument 'to' is sealed under a key SEALED_ARGUMENT_KEYS no longer holds"
    ):
        replay_dead_letters([letter])
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.OPEN


@pytest.mark.django_db(transaction=True)
def test_a_dead_letter_recorded_under_key_a_replays_after_rotating_to_key_b(
    live_worker, fake_twilio, key_a, settings
):
    # Twilio refuses the first attempt for good (the account's credentials, since fixed).
    fake_twilio.fail_next(401, twilio_error(401, 20003, "Authenticate"), path_contains="/Messages.json")
    result = send_whatsapp_message.delay(to=NUMBER, body=TEXT)
    letter = wait_until(
        lambda: DeadLetter.objects.filter(task_id=result.id).first(), timeout=30, what="the dead letter"
    )
    assert _opens_with(key_a, letter.kwargs["to"]) and NUMBER not in str(letter.kwargs)

    key_b = Fernet.generate_key().decode()
    settings.SEALED_ARGUMENT_KEYS = [key_b, key_a]  # B first: it seals, A still opens
    call_command("reseal", stdout=io.StringIO())
    settings.SEALED_ARGUMENT_KEYS = [key_b]  # A removed
    letter.refresh_from_db()
    assert _opens_with(key_b, letter.kwargs["to"]) and not _opens_with(key_a, letter.kwargs["to"])

    assert replay_dead_letters([letter], by="ops") == 1
    wait_until(
        lambda: TaskResult.objects.filter(task_id=result.id, status="SUCCESS").exists(),
        timeout=30,
        what="the replayed job to succeed",
    )
    accepted = [m for m in fake_twilio.messages.values() if m["to"] == f"whatsapp:{NUMBER}"]
    assert [m["body"] for m in accepted] == [TEXT]
    assert WhatsAppMessage.objects.get(scope=result.id).to == NUMBER


@pytest.mark.django_db
def test_migration_rekeys_older_bulk_rows_by_their_position_so_a_replay_finds_them(key_a):
    # Rows of a bulk job recorded before 0004 were keyed by their number, in the job's order.
    migration = importlib.import_module("messaging.migrations.0004_sealed_personal_columns")
    numbers = ["+16475550103", "+16475550101", "+16475550102"]
    for number in numbers:
        WhatsAppMessage.objects.create(to=number, body=TEXT, scope="bulk-old", idempotency_key=f"to:{number}")
    WhatsAppMessage.objects.create(to=NUMBER, body=TEXT, scope="other", idempotency_key=f"to:{NUMBER}")
    WhatsAppMessage.objects.create(to=NUMBER, body=TEXT, scope="single", idempotency_key="message")

    class Editor:  # what RunPython's schema editor does with the statement (SQLite's needs no atomic)
        def execute(self, sql, params):
            with connection.cursor() as cursor:
                cursor.execute(sql, params)

    migration.rekey_recipients(None, Editor())

    rows = WhatsAppMessage.objects.order_by("pk").values_list("scope", "idempotency_key", "to")
    assert list(rows) == [
        ("bulk-old", recipient_key(0), numbers[0]),
        ("bulk-old", recipient_key(1), numbers[1]),
        ("bulk-old", recipient_key(2), numbers[2]),
        ("other", recipient_key(0), NUMBER),
        ("single", "message", NUMBER),
    ]
