"""Re-encrypting what rests under the newest key of SEALED_ARGUMENT_KEYS (`manage.py reseal`).

What it rewrites: the arguments of every outbox row and every dead letter (each envelope rotated
with MultiFernet.rotate; the clear value of an argument its task now seals, sealed), and every
sealed column of every model (jobs/sealing.py SealedTextField: rotated, or sealed if stored clear).
Rows are read and written in batches by primary key, each batch in its own transaction; nothing
else writes these values once they are stored, so a sweep runs alongside workers.

A value no key of the ring opens is counted as unopenable, with its row named, and left as it
is: the command then fails, so the key it needs is not dropped (docs/security.md, rotation).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.apps import apps
from django.db import models, transaction
from django.db.models.functions import Cast

from jobs.celery_app import argument_model_of
from jobs.models import DeadLetter, OutboxMessage
from jobs.sealing import CannotUnseal, SealedTextField, rotate_envelopes, seal_arguments

logger = logging.getLogger(__name__)

BATCH_SIZE = 500


@dataclass
class ResealReport:
    """Rows rewritten per table (app_label.Model), and rows that could not be opened."""

    rewritten: dict[str, int] = field(default_factory=dict)
    unopenable: list[str] = field(default_factory=list)

    def count(self, label: str, n: int) -> None:
        self.rewritten[label] = self.rewritten.get(label, 0) + n


def reseal_everything(*, batch_size: int = BATCH_SIZE) -> ResealReport:
    report = ResealReport()
    reseal_job_arguments(OutboxMessage, report, batch_size=batch_size)
    reseal_job_arguments(DeadLetter, report, batch_size=batch_size)
    for model in apps.get_models():
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, SealedTextField):
                reseal_column(model, model_field, report, batch_size=batch_size)
    return report


def reseal_job_arguments(model: type[models.Model], report: ResealReport, *, batch_size: int) -> None:
    """The args (dead letters) and kwargs of every stored job of `model`, under the newest key."""
    has_args = any(f.name == "args" for f in model._meta.concrete_fields)
    columns = ["pk", "task_name", "kwargs", *(["args"] if has_args else [])]
    label = model._meta.label
    for batch in _batches(model.objects.order_by("pk").values(*columns), batch_size):
        changed = []
        for row in batch:
            arguments = argument_model_of(row["task_name"])
            try:
                args, kwargs = seal_arguments(arguments, row.get("args") or [], row["kwargs"] or {})
                args, kwargs = rotate_envelopes(args), rotate_envelopes(kwargs)
            except (TypeError, CannotUnseal) as exc:
                report.unopenable.append(f"{label} pk={row['pk']} ({row['task_name']}): {exc}")
                continue
            if kwargs != row["kwargs"] or (has_args and args != row["args"]):
                instance = model(pk=row["pk"], kwargs=kwargs)
                if has_args:
                    instance.args = list(args)
                changed.append(instance)
        with transaction.atomic():
            model.objects.bulk_update(changed, ["kwargs", *(["args"] if has_args else [])])
        report.count(label, len(changed))


def reseal_column(
    model: type[models.Model], column: SealedTextField, report: ResealReport, *, batch_size: int
) -> None:
    """One sealed column of every row of `model`, under the newest key (clear text sealed)."""
    label = model._meta.label
    stored = (
        model._default_manager.annotate(_stored=Cast(column.name, models.TextField()))
        .exclude(_stored__isnull=True)
        .exclude(_stored="")
        .order_by("pk")
        .values_list("pk", "_stored")
    )
    for batch in _batches(stored, batch_size):
        changed = []
        for pk, value in batch:
            try:
                changed.append(model(pk=pk, **{column.attname: column.rotated(value)}))
            except CannotUnseal as exc:
                report.unopenable.append(f"{label} pk={pk}: {exc}")
        with transaction.atomic():
            model._default_manager.bulk_update(changed, [column.name])
        report.count(f"{label}.{column.name}", len(changed))


def _batches(queryset, size: int) -> Iterator[list]:
    """The rows of an ordered queryset, `size` at a time, by primary key (keyset pagination)."""
    last = None
    while True:
        page = queryset if last is None else queryset.filter(pk__gt=last)
        rows = list(page[:size])
        if not rows:
            return
        yield rows
        last = rows[-1]["pk"] if isinstance(rows[-1], dict) else rows[-1][0]
