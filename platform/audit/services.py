"""Writing audit-log entries; every service that changes domain state calls record_audit."""

from datetime import date
from typing import Any

from django.db import models, transaction

from audit.models import AuditLog
from identifiers import mask_phone

# Personal data is not copied into a table kept for a year: phone numbers are stored masked.
PHONE_FIELDS = frozenset({"phone", "to"})


def record_audit(
    *, actor: str, action: str, obj: models.Model, changes: dict[str, Any] | None = None
) -> AuditLog:
    """Append one entry about `obj`. Call it inside the transaction that made the change, so the
    entry and the change commit (or roll back) together."""
    return AuditLog.objects.create(
        actor=actor or "system",
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        changes=_jsonable(_mask_personal(changes or {})),
    )


def _mask_personal(changes: dict[str, Any]) -> dict[str, Any]:
    return {
        k: [mask_phone(x) if isinstance(x, str) else x for x in v]
        if k in PHONE_FIELDS and isinstance(v, list)
        else v
        for k, v in changes.items()
    }


def _jsonable(value: Any) -> Any:
    # Decimals, dates and enums are stored as their string form: JSON has no such types.
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def create_audited(*, obj: models.Model, actor: str, action: str = "create") -> models.Model:
    """Validate (full_clean: field validators, choices, model clean, constraints) and insert a
    new row with its audit entry, atomically. Bad input raises ValidationError naming the field."""
    obj.full_clean()
    with transaction.atomic():
        obj.save(force_insert=True)
        fields = {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields if not f.primary_key}
        record_audit(actor=actor, action=action, obj=obj, changes={k: [None, v] for k, v in fields.items()})
    return obj


def claim_once_per_day(
    model: type[models.Model], pk: int, *, field: str, today: date, actor: str, action: str
) -> bool:
    """Set the date column `field` of row `pk` to `today` unless it is already today or later,
    audited as `action`: True for exactly one caller per row per day (a conditional update), the
    guard of notices due once per subject per day (messaging/daily_notices.py)."""
    with transaction.atomic():
        claimed = model.objects.filter(pk=pk).exclude(**{f"{field}__gte": today}).update(**{field: today})
        if claimed:
            record_audit(actor=actor, action=action, obj=model(pk=pk), changes={field: [None, today]})
    return bool(claimed)
