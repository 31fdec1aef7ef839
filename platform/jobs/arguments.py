"""A task's arguments, declared once: by the types in its signature.

    @platform_task(name=TaskName.SEND_WHATSAPP_MESSAGE)
    def send_whatsapp_message(self, to: E164Phone, body: MessageBody, vehicle_id: RowId | None = None):

platform_task turns the signature into a pydantic model (`task.arguments`, built once at import).
The task base validates each job's arguments with it in the worker, before the body runs: a job
whose arguments it refuses fails at once into a dead letter naming every wrong field by its
dotted path (`to`, `recipients.3`), with no retry (InvalidArgument). The trigger API validates
requests with the same model, answers with the same paths under `kwargs.` (`kwargs.recipients.3`)
and the same sentences, and shows its JSON Schema (GET /api/v1/tasks, the OpenAPI document).
`.delay()` stays cheap: nothing is validated when a job is enqueued (Celery checks the names only:
PlatformTask.typing). A job published by name (jobs/outbox.py, a dead letter's replay) gets the same
check of the names, against the model, from `check_keywords` below.

An argument typed `Sealed[T]` (jobs/sealing.py) is personal: it travels and rests encrypted, and is
opened by validate_arguments, just before the model checks it as a T. Only an argument's whole type
may be sealed (arguments_model refuses `list[Sealed[str]]`, naming the task and the argument).

Models forbid unknown arguments and are strict about types (no "5" for 5, no 5 for "5"), except
that JSON's integral floats count as integers (7.0 is 7). The argument types below are the ones
several tasks share; what a phone number or a VIN is comes from platform/identifiers/.

Why not Celery's own `pydantic=True`: it validates only the arguments typed as a model, one by
one, inside the body's wrapper; a phone number or an id would go unchecked, an unknown argument
would be a TypeError, and there would be no model of the whole call for the API's JSON Schema.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, get_type_hints

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
)

from identifiers import (
    CONTENT_SID_EXAMPLE,
    CONTENT_SID_MESSAGE,
    CONTENT_SID_PATTERN,
    E164_EXAMPLE,
    E164_MESSAGE,
    E164_PATTERN,
    VIN_EXAMPLE,
    VIN_MESSAGE,
    VIN_PATTERN,
    is_content_sid,
    is_e164,
    is_vin,
    normalize_vin,
)
from jobs.errors import InvalidArgument
from jobs.sealing import misplaced_seal, unseal_arguments


class TaskArguments(BaseModel):
    """Base of every task's argument model: unknown arguments are errors, types are exact."""

    model_config = ConfigDict(extra="forbid", strict=True)


# --- Argument types several tasks share ------------------------------------------------------


def integral_float_to_int(value: object) -> object:
    """JSON Schema's "integer" includes 7.0; pydantic's strict int does not. Accept it, but never
    1.5, "7" or true."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def json_int(**constraints: Any) -> Any:
    """An int with bounds (shown in the JSON Schema as minimum/maximum) that also takes integral
    floats."""
    return Annotated[int, Field(**constraints), BeforeValidator(integral_float_to_int)]


def _must(check: Callable[[object], bool], message: str) -> AfterValidator:
    def validate(value: str) -> str:
        if not check(value):
            raise ValueError(message)
        return value

    return AfterValidator(validate)


RowId = Annotated[json_int(ge=1, le=2**63 - 1), Field(description="Primary key of the row")]

# The pattern is shown in the JSON Schema; the validator gives the readable message.
E164Phone = Annotated[
    str,
    _must(is_e164, E164_MESSAGE),
    Field(
        json_schema_extra={"pattern": E164_PATTERN, "examples": [E164_EXAMPLE]},
        description="E.164 phone number, no 'whatsapp:' prefix",
    ),
]
Vin = Annotated[
    str,
    # Case and surrounding spaces are forgiven; I, O and Q are not (ISO 3779).
    BeforeValidator(lambda value: normalize_vin(value) if isinstance(value, str) else value),
    _must(is_vin, VIN_MESSAGE),
    Field(
        json_schema_extra={"pattern": VIN_PATTERN, "examples": [VIN_EXAMPLE]},
        description="Vehicle identification number (ISO 3779)",
    ),
]
ContentSid = Annotated[
    str,
    _must(is_content_sid, CONTENT_SID_MESSAGE),
    Field(
        json_schema_extra={"pattern": CONTENT_SID_PATTERN, "examples": [CONTENT_SID_EXAMPLE]},
        description="Twilio Content API template SID",
    ),
]


# --- The model of a signature, and validating with it ----------------------------------------


def arguments_model(body: Callable[..., Any], *, task_name: str) -> type[TaskArguments]:
    """The argument model of a bound task body: one field per parameter after `self`, typed and
    defaulted as the signature says."""
    hints = get_type_hints(body, include_extras=True)
    fields: dict[str, Any] = {}
    for parameter in list(inspect.signature(body).parameters.values())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            stars = "*" if parameter.kind == parameter.VAR_POSITIONAL else "**"
            raise TypeError(f"{task_name}: name every argument; {stars}{parameter.name} cannot be validated")
        if parameter.name not in hints:
            raise TypeError(f"{task_name}: argument {parameter.name!r} needs a type")
        if misplaced_seal(hints[parameter.name]):
            raise TypeError(
                f"{task_name}: argument {parameter.name!r}: Sealed[...] must be the argument's whole "
                "type (Sealed[list[str]], Sealed[str | None]), not inside it (jobs/sealing.py)"
            )
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (hints[parameter.name], default)
    model_name = "".join(part.title() for part in body.__name__.split("_")) + "Arguments"
    return create_model(model_name, __base__=TaskArguments, __module__=body.__module__, **fields)


def validate_arguments(
    model: type[TaskArguments], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The job's arguments, validated and normalized, as keyword arguments for the body; else
    InvalidArgument naming each wrong field. Positional arguments are named by the signature.
    Sealed arguments are opened here, and only here, in the worker (jobs/sealing.py): the model
    checks their clear values like any other's."""
    if not (args or kwargs or model.model_fields):
        return {}  # a task without arguments, called without any: nothing to check
    if args:
        names = list(model.model_fields)
        if len(args) > len(names) or any(name in kwargs for name in names[: len(args)]):
            raise InvalidArgument("args", f"takes at most {len(names)} arguments, each given once")
        kwargs = {**dict(zip(names, args, strict=False)), **kwargs}
    kwargs = unseal_arguments(model, dict(kwargs))
    try:
        validated = model.model_validate(kwargs)
    except ValidationError as exc:
        raise InvalidArgument.naming(field_problems(exc.errors())) from None
    return {name: getattr(validated, name) for name in model.model_fields}


def check_keywords(task: Any, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None) -> None:
    """What `.delay()` checks in the caller (Celery's typing=True), for a job published by name:
    the arguments' names against the task's argument model. An unknown (misspelt) or missing
    argument raises TypeError naming it and the task, before anything is written or sent. The
    values are checked in the worker, as for `.delay()`. A task declared without a model (one of
    Celery's own) gets Celery's check of its signature."""
    kwargs = kwargs or {}
    model: type[TaskArguments] | None = getattr(task, "arguments", None)
    if model is None:
        header = getattr(task, "__header__", None)
        if header is not None:
            header(*args, **kwargs)  # TypeError, as .delay() raises it
        return
    names = list(model.model_fields)
    positional = names[: len(args)]
    problems = []
    if len(args) > len(names):
        problems.append(f"takes at most {len(names)} arguments, {len(args)} given positionally")
    problems += [f"unknown argument {name!r}" for name in kwargs if name not in model.model_fields]
    problems += [f"argument {name!r} given twice" for name in positional if name in kwargs]
    problems += [
        f"missing argument {name!r}"
        for name, field in model.model_fields.items()
        if field.is_required() and name not in kwargs and name not in positional
    ]
    if problems:
        takes = ", ".join(names) or "no arguments"
        raise TypeError(f"{task.name}: {'; '.join(problems)} (it takes: {takes})")


def field_problems(errors: Iterable[Mapping[str, Any]], *, prefix: str = "") -> dict[str, str]:
    """pydantic's errors -> {"dotted.path": "what is wrong"}, the first problem per path: the one
    format of dead letters and of the trigger API's `details.fields`."""
    problems: dict[str, str] = {}
    for error in errors:
        path = field_path(error.get("loc", ()), prefix=prefix) or "kwargs"  # the whole: not an object
        problems.setdefault(path, problem(error))
    return problems


def field_path(loc: Iterable[Any], *, prefix: str = "") -> str:
    """('recipients', 3) -> 'recipients.3'; with prefix 'kwargs': 'kwargs.recipients.3'."""
    return ".".join(str(part) for part in (prefix, *loc) if str(part) != "")


def problem(error: Mapping[str, Any], *, unknown: str = "unknown argument") -> str:
    """What is wrong, as the end of a sentence whose subject is the field: "is required"."""
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return unknown
    if kind == "missing":
        return "is required"
    message = str(error.get("msg", "is invalid"))
    # Our validators raise ValueError("must be ..."): pydantic prefixes "Value error, ".
    message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:]
