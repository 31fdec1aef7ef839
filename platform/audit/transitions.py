"""Status changes for every state machine: lock the row, check the transition table, save and
audit in one transaction. Each domain app declares its table and wraps this in a service."""

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import models, transaction

from audit.services import record_audit

M = TypeVar("M", bound=models.Model)

TransitionTable = Mapping[str, frozenset[str]]


def allowed_targets(table: TransitionTable, current: str) -> frozenset[str]:
    return table.get(current, frozenset())


def apply_transition(
    *,
    model: type[M],
    pk: Any,
    to: str,
    actor: str,
    table: TransitionTable,
    field: str = "status",
    on_enter: Callable[[M, str, str], dict[str, Any]] | None = None,
) -> M:
    """Move `model` row `pk` from its current status to `to`.

    Illegal or unknown targets raise ValidationError({field: ...}) and, because everything runs
    in one atomic block, leave the row and the audit log unchanged. `on_enter(obj, old, new)` may
    set further fields (timestamps) on obj and returns them as {name: [old, new]} for the audit.
    """
    choices = {value for value, _ in model._meta.get_field(field).choices}
    if to not in choices:
        raise ValidationError({field: f"Unknown {field} {to!r}; expected one of {sorted(choices)}."})
    with transaction.atomic():
        # Row lock: two concurrent transitions of one row serialize, the second sees the first's result.
        obj = model._default_manager.select_for_update().get(pk=pk)
        current = getattr(obj, field)
        if to not in allowed_targets(table, current):
            allowed = sorted(allowed_targets(table, current)) or "none (final)"
            raise ValidationError(
                {field: f"Cannot change {field} from {current!r} to {to!r}; allowed: {allowed}."}
            )
        setattr(obj, field, to)
        changes: dict[str, Any] = {field: [current, to]}
        if on_enter is not None:
            changes.update(on_enter(obj, current, to))
        obj.full_clean()
        obj.save()
        record_audit(actor=actor, action=f"{field}:{current}->{to}", obj=obj, changes=changes)
    return obj
