"""A task's arguments are declared once, by its signature's types: the task base validates every job
with them in the worker before the body runs; `.delay()` does not pay for it."""

from __future__ import annotations

import pytest

from jobs.errors import InvalidArgument
from jobs.models import DeadLetter
from tasks.app import app
from tests.support.probe import tasks as probe
from tests.support.probe.models import ProbeExecution
from tests.support.processes import wait_until

VIN = "1HGCM82633A004352"


def _dead_letter(task_id: str) -> DeadLetter:
    return wait_until(
        lambda: DeadLetter.objects.filter(task_id=task_id).first(), timeout=30, what="a dead letter"
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("live_worker")
class TestOnAWorker:
    def test_the_body_receives_the_validated_normalized_values(self, marker):
        result = probe.echo_arguments.delay(marker=marker, vin=f" {VIN.lower()} ", count=2.0)

        assert result.get(timeout=20) == {"vin": VIN, "count": 2, "count_type": "int"}

    def test_positional_arguments_are_named_by_the_signature(self, marker):
        assert probe.echo_arguments.delay(marker, VIN).get(timeout=20)["vin"] == VIN

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"vin": "1HGCM82633A00435O"}, "vin: must be a VIN: 17 letters and digits, without I, O or Q"),
            ({"vin": VIN, "count": -1}, "count: input should be greater than or equal to 0"),
            ({"vin": VIN, "count": "2"}, "count: input should be a valid integer"),
            ({}, "vin: is required"),
            ({"vin": VIN, "colour": "red"}, "colour: unknown argument"),
        ],
    )
    def test_unusable_arguments_dead_letter_the_job_before_its_body_runs(self, marker, kwargs, message):
        # send_task, as another program would: nothing checks the arguments before the worker.
        result = app.send_task(probe.echo_arguments.name, kwargs={"marker": marker, **kwargs})

        letter = _dead_letter(result.id)
        assert letter.exception_message == message
        assert (letter.exception_type, letter.attempts) == ("jobs.errors.InvalidArgument", 1)
        assert letter.kwargs == {"marker": marker, **kwargs}  # kept as sent, for a replay
        assert not ProbeExecution.objects.filter(marker=marker).exists()

    def test_every_wrong_field_is_named_in_one_dead_letter(self, marker):
        result = app.send_task(probe.echo_arguments.name, kwargs={"marker": 7, "vin": "x"})

        assert _dead_letter(result.id).exception_message == (
            "marker: input should be a valid string; "
            "vin: must be a VIN: 17 letters and digits, without I, O or Q"
        )


def test_enqueueing_does_not_validate_values_only_names():
    # .delay() stays cheap: a wrong value is the worker's to refuse; a wrong name is refused here.
    message = app.amqp.as_task_v2("job-1", probe.echo_arguments.name, kwargs={"marker": 1, "vin": 2})
    assert message.body[1] == {"marker": 1, "vin": 2}
    with pytest.raises(TypeError):
        probe.echo_arguments.delay(marker="m", vim=VIN)


def test_called_directly_the_arguments_are_validated_too():
    with pytest.raises(InvalidArgument, match="^vin: must be a VIN"):
        probe.echo_arguments(marker="m", vin="nope")


def test_a_body_that_takes_arguments_it_cannot_declare_is_refused_at_import():
    from jobs.task_base import platform_task

    with pytest.raises(TypeError, match="needs a type"):

        @platform_task(name="probe.untyped")
        def untyped(self, marker):
            return marker

    with pytest.raises(TypeError, match=r"\*\*options cannot be validated"):

        @platform_task(name="probe.open_ended")
        def open_ended(self, **options: str) -> None:
            return None
