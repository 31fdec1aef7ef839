"""Sealed arguments: what a task marks personal is encrypted wherever a job rests.

    @platform_task(name=TaskName.SEND_WHATSAPP_MESSAGE)
    def send_whatsapp_message(
        self, to: Sealed[E164Phone], body: Sealed[MessageBody], vehicle_id: RowId | None = None
    ):

`Sealed[T]` is T for everything the argument model does (validation, the JSON Schema the API
shows, the body's value), plus a mark. A marked argument travels and rests as an envelope,
`{"__sealed__": "<Fernet token>"}`, in the broker message, the outbox row and the dead letter, and
shows as `<sealed>` in every repr (Celery's argsrepr/kwargsrepr: Flower, worker logs, the result
rows). Two functions are the whole path:

- `seal_arguments`, on the way in: where a message is built (jobs/task_messages.py, every publish:
  `.delay()`, `send_task` by name, a retry, the outbox relay, a replay) and where the outbox writes
  the message it will publish (jobs/outbox.py). An envelope passing through again (a retry, a
  replay) is re-encrypted under the newest key (MultiFernet.rotate);
- `unseal_arguments`, in the worker, just before the argument model validates the job
  (jobs/arguments.py validate_arguments, called by PlatformTask.__call__): the body receives clear
  values, and `self.request` keeps the envelopes, so a retry or a dead letter never holds clear ones.

The key ring is SEALED_ARGUMENT_KEYS: Fernet keys, the first encrypts, every one decrypts
(rotation: docs/security.md). Rows a domain keeps with personal text use `SealedTextField`, sealed
with the same ring; `manage.py reseal` re-encrypts every stored envelope and sealed column under the
newest key (and seals values stored in clear before their field or argument was sealed).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, get_args, get_origin

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import FieldError
from django.db import models
from kombu.utils import json as kombu_json

from jobs.errors import InvalidArgument

# An argument's envelope: a JSON object with this one key (no argument's clear value is one).
ENVELOPE_KEY = "__sealed__"
# A sealed column's stored text: this prefix, then the Fernet token.
COLUMN_PREFIX = "sealed:"
# What a repr shows for a sealed value.
MASK = "<sealed>"


class _SealedMark:
    """The mark Sealed[T] adds to T's metadata (pydantic keeps it in FieldInfo.metadata)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Sealed"


SEALED = _SealedMark()


class Sealed:
    """`Sealed[T]`: an argument of type T whose value is personal (a phone number, a message body).
    Only an argument's whole type may be sealed: `Sealed[list[E164Phone]]`, `Sealed[str | None]`
    (None travels as None), never `list[Sealed[str]]` or `Sealed[str] | None`."""

    def __class_getitem__(cls, inner: Any) -> Any:
        if isinstance(inner, tuple):
            raise TypeError(
                f"Sealed takes one type, e.g. Sealed[str]; got Sealed[{', '.join(map(repr, inner))}]"
            )
        return Annotated[inner, SEALED]

    def __init__(self) -> None:
        raise TypeError("Sealed is a type annotation (Sealed[str]), not a value")


class CannotUnseal(ValueError):
    """A sealed value none of SEALED_ARGUMENT_KEYS opens (its key was removed too soon), or an
    envelope that is not one."""


# --- The key ring ------------------------------------------------------------------------------


def keyring() -> MultiFernet:
    """The ring of SEALED_ARGUMENT_KEYS as it is now (a test may change the setting)."""
    return _ring(tuple(settings.SEALED_ARGUMENT_KEYS))


@functools.lru_cache(maxsize=8)
def _ring(keys: tuple[str, ...]) -> MultiFernet:
    # The settings checked each key at start-up (jobs/sealing_keys.py).
    return MultiFernet([Fernet(key) for key in keys])


def _open(token: bytes, *, rotate: bool = False, what: str = "") -> bytes:
    """The clear bytes of a token (or, with rotate, the token under the newest key); CannotUnseal,
    naming `what` when given, when no key of the ring opens it."""
    try:
        return keyring().rotate(token) if rotate else keyring().decrypt(token)
    except InvalidToken:
        raise CannotUnseal(
            f"{what + ' ' if what else ''}is sealed under a key SEALED_ARGUMENT_KEYS no longer holds "
            "(or its token is damaged)"
        ) from None


# --- One value ---------------------------------------------------------------------------------


def seal(value: Any) -> dict[str, str]:
    """The envelope of `value` (anything the task serializer takes), under the newest key."""
    token = keyring().encrypt(kombu_json.dumps(value).encode())
    return {ENVELOPE_KEY: token.decode()}


def is_envelope(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and ENVELOPE_KEY in value


def unseal(envelope: Mapping[str, Any]) -> Any:
    """The clear value of an envelope; CannotUnseal when no key of the ring opens it."""
    token = envelope.get(ENVELOPE_KEY)
    if not isinstance(token, str):
        raise CannotUnseal("is a malformed sealed value (its token is not a string)")
    return kombu_json.loads(_open(token.encode()))


def rotate(envelope: Mapping[str, Any]) -> dict[str, str]:
    """The same value's envelope under the newest key (MultiFernet.rotate); CannotUnseal as unseal."""
    token = envelope.get(ENVELOPE_KEY)
    if not isinstance(token, str):
        raise CannotUnseal("is a malformed sealed value (its token is not a string)")
    return {ENVELOPE_KEY: _open(token.encode(), rotate=True).decode()}


# --- A task's arguments ------------------------------------------------------------------------


def is_sealed(hint: Any) -> bool:
    """Is this argument type Sealed[...] as a whole?"""
    return get_origin(hint) is Annotated and any(mark is SEALED for mark in hint.__metadata__)


def misplaced_seal(hint: Any) -> bool:
    """Is Sealed used inside this type rather than as the whole of it (`list[Sealed[str]]`)?"""
    inner = get_args(hint)[0] if is_sealed(hint) else hint
    return _contains_seal(inner)


def _contains_seal(hint: Any) -> bool:
    if is_sealed(hint):
        return True
    if get_origin(hint) is Annotated:
        return _contains_seal(get_args(hint)[0])
    return any(_contains_seal(arg) for arg in get_args(hint) if not isinstance(arg, (str, int, float)))


@functools.cache
def sealed_names(model: type) -> tuple[str, ...]:
    """The sealed arguments of a task's argument model (jobs/arguments.py), in signature order."""
    return tuple(
        name for name, field in model.model_fields.items() if any(mark is SEALED for mark in field.metadata)
    )


def seal_arguments(
    model: type | None, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None
) -> tuple[Any, Any]:
    """A job's (args, kwargs) with each sealed argument's value in an envelope under the newest
    key: a clear value sealed, an envelope rotated, None left None. Other arguments, and every
    argument of a task without a model or without sealed arguments, are returned as they came.
    A value that cannot be serialized, or an envelope no key opens, raises TypeError naming the
    argument (in the caller, before anything is sent)."""
    names = sealed_names(model) if model is not None else ()
    if not names:
        return args, kwargs
    order = list(model.model_fields)
    new_args = list(args or ())
    for position, value in enumerate(new_args):
        if position < len(order) and order[position] in names:
            new_args[position] = _sealed(order[position], value)
    new_kwargs = dict(kwargs or {})
    for name in names:
        if name in new_kwargs:
            new_kwargs[name] = _sealed(name, new_kwargs[name])
    return (type(args)(new_args) if isinstance(args, tuple) else new_args), new_kwargs


def _sealed(name: str, value: Any) -> Any:
    if value is None:
        return None
    try:
        return rotate(value) if is_envelope(value) else seal(value)
    except CannotUnseal as exc:
        raise TypeError(f"argument {name!r} {exc}") from None
    except TypeError as exc:
        raise TypeError(f"argument {name!r} cannot be sealed: {exc}") from None


def unseal_arguments(model: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The job's keyword arguments with each sealed argument's envelope opened, for the argument
    model to validate. A clear value is taken as it is (a job published before its task sealed
    that argument). An envelope no key opens is InvalidArgument naming the argument: the job
    cannot run, and fails into a dead letter at once (rotate keys as docs/security.md says)."""
    names = sealed_names(model)
    if not names:
        return kwargs
    opened = dict(kwargs)
    for name in names:
        if is_envelope(opened.get(name)):
            try:
                opened[name] = unseal(opened[name])
            except CannotUnseal as exc:
                raise InvalidArgument(name, str(exc)) from None
    return opened


class _Masked:
    def __repr__(self) -> str:
        return MASK


_MASKED = _Masked()


def masked(value: Any) -> Any:
    """`value` (arguments as a list, tuple or dict) with every envelope shown as <sealed>: what
    the reprs are built from."""
    if is_envelope(value):
        return _MASKED
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(masked(item) for item in value)
    return value


def rotate_envelopes(value: Any) -> Any:
    """Stored job arguments (a dead letter's, an outbox row's) with every envelope in them rotated
    to the newest key, whatever task they are for (`manage.py reseal`, for a task no longer
    registered). CannotUnseal propagates: the caller names the row."""
    if is_envelope(value):
        return rotate(value)
    if isinstance(value, dict):
        return {key: rotate_envelopes(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rotate_envelopes(item) for item in value]
    return value


# --- Columns -----------------------------------------------------------------------------------


def seal_text(text: str) -> str:
    return COLUMN_PREFIX + keyring().encrypt(text.encode()).decode()


def is_sealed_text(stored: Any) -> bool:
    return isinstance(stored, str) and stored.startswith(COLUMN_PREFIX)


class SealedTextField(models.TextField):
    """Text a domain row keeps that is personal (a recipient's number, a message body): stored as
    `sealed:<Fernet token>` under SEALED_ARGUMENT_KEYS, clear in Python. The empty string stays
    empty. Text stored before the column was sealed reads as it is, until `manage.py reseal`
    seals it. Encryption is randomized, so the column cannot be searched or filtered (only
    `isnull`): a lookup on it raises FieldError rather than silently matching nothing."""

    description = "Text sealed with SEALED_ARGUMENT_KEYS"

    def from_db_value(self, value, expression, connection):
        if not is_sealed_text(value):
            return value
        token = value.removeprefix(COLUMN_PREFIX).encode()
        return _open(token, what=f"{self.model._meta.label}.{self.name}").decode()

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "" or is_sealed_text(value):
            return value
        return seal_text(value)

    def get_lookup(self, lookup_name):
        if lookup_name != "isnull":
            raise FieldError(
                f"{self.model._meta.label}.{self.name} is sealed: it cannot be filtered by "
                f"{lookup_name!r} (search by another column)"
            )
        return super().get_lookup(lookup_name)

    def rotated(self, stored: str) -> str:
        """What `manage.py reseal` writes for a stored value: under the newest key."""
        if not is_sealed_text(stored):
            return seal_text(stored)
        token = stored.removeprefix(COLUMN_PREFIX).encode()
        rotated = _open(token, rotate=True, what=f"{self.model._meta.label}.{self.name}")
        return COLUMN_PREFIX + rotated.decode()
