"""The tasks other services may trigger over HTTP, each declared once: name, description, and a
pydantic model of its keyword arguments (docs/contract.md section 4). Its queue follows from the
routes in platform/jobs/queues.py, so the two can never disagree. A task not declared here cannot be
triggered.

Argument models forbid unknown arguments (the error names the argument), are strict about types
(no "5" for 5), and reuse the platform's one definition of a phone number and a VIN
(marketplace/validators.py). Their JSON Schema is what GET /api/v1/tasks shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from typing import Annotated, Any, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from http_api import conf
from logistics.models import ShipmentEvent
from marketplace.validators import E164_RE, VIN_RE, normalize_vin, validate_e164_phone, validate_vin

E164_MESSAGE = "must be an E.164 phone number, e.g. +14165550123"
VIN_MESSAGE = "must be a VIN: 17 letters and digits, without I, O or Q"


def _e164(value: str) -> str:
    try:
        validate_e164_phone(value)
    except DjangoValidationError:
        raise ValueError(E164_MESSAGE) from None
    return value


def _vin(value: str) -> str:
    try:
        validate_vin(value)
    except DjangoValidationError:
        raise ValueError(VIN_MESSAGE) from None
    return value


# The pattern is documented in the JSON Schema; the validator gives the readable message.
E164Phone = Annotated[
    str,
    AfterValidator(_e164),
    Field(
        json_schema_extra={"pattern": E164_RE.pattern, "examples": ["+14165550123"]},
        description="E.164 phone number, no 'whatsapp:' prefix",
    ),
]
Vin = Annotated[
    str,
    # Case and surrounding spaces are forgiven; I, O and Q are not (ISO 3779).
    BeforeValidator(lambda v: normalize_vin(v) if isinstance(v, str) else v),
    AfterValidator(_vin),
    Field(
        json_schema_extra={"pattern": VIN_RE.pattern, "examples": ["1HGCM82633A004352"]},
        description="Vehicle identification number (ISO 3779)",
    ),
]


def integral_float_to_int(value: object) -> object:
    """JSON Schema's "integer" includes 7.0; pydantic's strict int does not. Accept it, but never
    1.5, "7" or true."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def json_int(**constraints: Any) -> Any:
    """An int with JSON Schema bounds that also takes integral floats (constraints first, so
    they land in the JSON Schema as minimum/maximum)."""
    return Annotated[int, Field(**constraints), BeforeValidator(integral_float_to_int)]


def _not_blank(value: str) -> str:
    # The WhatsApp tasks refuse a blank text (it would dead-letter): refuse it here, with its field.
    if not value.strip():
        raise ValueError("must not be blank")
    return value


RowId = Annotated[json_int(ge=1, le=2**63 - 1), Field(description="Primary key of the row")]
MessageBody = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1600, strip_whitespace=False),
    AfterValidator(_not_blank),
    Field(description="Message text, not blank (Twilio's limit: 1600 characters)"),
]
ContentSid = Annotated[
    str,
    StringConstraints(pattern=r"^HX[0-9a-fA-F]{32}$"),
    Field(description="Twilio Content API template SID", examples=["HX" + "0" * 32]),
]


class Arguments(BaseModel):
    """Base of every argument model: unknown arguments are errors, types are exact."""

    model_config = ConfigDict(extra="forbid", strict=True)


class NoArguments(Arguments):
    pass


class LeadFollowUp(Arguments):
    lead_id: RowId


class DealFollowUp(Arguments):
    deal_id: RowId


class ShipmentNotification(Arguments):
    shipment_id: RowId
    event: Literal[tuple(ShipmentEvent.Kind.values)] = Field(  # type: ignore[valid-type]
        description="The shipment event to notify about (ShipmentEvent.Kind)"
    )


class AuditCleanup(Arguments):
    older_than_days: json_int(ge=1, le=36500) | None = Field(
        default=None, description="Retention in days; AUDIT_LOG_RETENTION_DAYS when omitted"
    )


class WhatsAppText(Arguments):
    to: E164Phone
    body: MessageBody
    vehicle_id: RowId | None = None


class WhatsAppTemplate(Arguments):
    to: E164Phone
    template: ContentSid
    variables: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=20)],
        Annotated[str, StringConstraints(max_length=1024)],
    ] = Field(max_length=50, description='Template variables, e.g. {"1": "Corolla"}')


def _distinct(numbers: list[str]) -> list[str]:
    # Like the task (messaging.bulk.validate_recipients): a repeated number is sent to once.
    return list(dict.fromkeys(numbers))


class BulkWhatsApp(Arguments):
    # The cap is the task's own (API_MAX_BULK_RECIPIENTS), counted on the list as given.
    recipients: Annotated[list[E164Phone], AfterValidator(_distinct)] = Field(
        min_length=1,
        max_length=conf.max_bulk_recipients(),
        description="E.164 numbers; a number given twice is sent to once",
    )
    body: MessageBody


class FetchVehicleHistory(Arguments):
    vin: Vin


@dataclass(frozen=True)
class TriggerableTask:
    name: str
    description: str
    arguments: type[Arguments]

    @property
    def queue(self) -> str:
        return queue_for(self.name)

    def kwargs_schema(self) -> dict[str, Any]:
        return _json_schema(self.arguments)


@cache
def _json_schema(model: type[Arguments]) -> dict[str, Any]:
    # Built once per process: GET /api/v1/tasks would otherwise rebuild every schema per call.
    schema = model.model_json_schema()
    schema.pop("title", None)
    return schema


def queue_for(task_name: str) -> str:
    """The queue platform/jobs/queues.py routes `task_name` to."""
    from jobs.queues import TASK_ROUTES, Queue

    for pattern, route in TASK_ROUTES.items():
        if fnmatchcase(task_name, pattern):
            return route["queue"]
    return Queue.DEFAULT.value


_DECLARED = [
    TriggerableTask(
        "tasks.fx.update_exchange_rates",
        "Fetch CAD/USD/XAF rates, store them, refresh their cache.",
        NoArguments,
    ),
    TriggerableTask(
        "tasks.payments.process_pending_payments",
        "Move pending invoices forward through Stripe, idempotently.",
        NoArguments,
    ),
    TriggerableTask(
        "tasks.payments.send_payment_reminders",
        "Remind buyers of overdue invoices, at most once per invoice per day.",
        NoArguments,
    ),
    TriggerableTask(
        "tasks.deals.check_stalled_deals",
        "Flag leads and deals with no activity past their threshold.",
        NoArguments,
    ),
    TriggerableTask("tasks.deals.send_lead_follow_up", "Follow up one lead.", LeadFollowUp),
    TriggerableTask("tasks.deals.send_deal_follow_up", "Follow up one deal.", DealFollowUp),
    TriggerableTask(
        "tasks.shipments.send_shipment_updates", "Notify buyers of shipment progress.", NoArguments
    ),
    TriggerableTask(
        "tasks.shipments.send_shipment_notification", "Notify about one shipment event.", ShipmentNotification
    ),
    TriggerableTask(
        "tasks.shipments.check_delayed_shipments",
        "Alert on shipments past their ETA, once per shipment per day.",
        NoArguments,
    ),
    TriggerableTask(
        "tasks.commissions.process_pending_commissions",
        "Compute and settle pending broker commissions, each once.",
        NoArguments,
    ),
    TriggerableTask(
        "tasks.maintenance.cleanup_old_audit_logs",
        "Delete audit-log rows past retention, in batches.",
        AuditCleanup,
    ),
    TriggerableTask(
        "tasks.notifications.send_whatsapp_message", "One WhatsApp text through Twilio.", WhatsAppText
    ),
    TriggerableTask(
        "tasks.notifications.send_whatsapp_template",
        "One WhatsApp template message (Twilio Content API).",
        WhatsAppTemplate,
    ),
    TriggerableTask(
        "tasks.notifications.send_bulk_whatsapp_notifications",
        "One text to many recipients, each once, within Twilio's rate limit.",
        BulkWhatsApp,
    ),
    TriggerableTask(
        "tasks.reports.fetch_vehicle_history",
        "Vehicle-history report by VIN, stored and cached 24 h.",
        FetchVehicleHistory,
    ),
]

TRIGGERABLE: dict[str, TriggerableTask] = {task.name: task for task in _DECLARED}


def get_task(name: str) -> TriggerableTask | None:
    return TRIGGERABLE.get(name)
