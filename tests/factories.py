"""Test data for every test module: plain functions with keyword arguments and sensible
defaults, each creating one valid row (and what it needs) directly through the ORM.

Call them with only what your test is about: make_deal(status="paid") builds the buyer,
dealer, broker and vehicle itself. Uniqueness (usernames, VINs, invoice numbers) comes from one
counter, so factories can be called any number of times in one test."""

from __future__ import annotations

import itertools
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from audit.models import AuditLog
from billing.models import ExchangeRate, Invoice, PaymentAttempt
from logistics.models import Shipment, ShipmentEvent
from marketplace.models import Commission, Deal, Lead, Offer, Profile, Role, Vehicle
from messaging.models import BulkBatch, WhatsAppMessage
from reports.models import DashboardSnapshot, VehicleHistoryReport

_seq = itertools.count(1)
# VIN alphabet without I, O, Q (identifiers.VIN_PATTERN).
_VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


def next_id() -> int:
    return next(_seq)


def make_vin(n: int | None = None) -> str:
    """A valid, unique 17-character VIN: a fixed manufacturer prefix plus a base-33 serial."""
    n = next_id() if n is None else n
    serial = ""
    for _ in range(8):
        n, r = divmod(n, len(_VIN_CHARS))
        serial = _VIN_CHARS[r] + serial
    return f"2HGFC2F59{serial}"


def make_phone(n: int | None = None) -> str:
    n = next_id() if n is None else n
    return f"+1416555{n % 10000:04d}"


# --- People ---------------------------------------------------------------------------------
def make_user(*, username: str | None = None, is_staff: bool = False, is_superuser: bool = False, **kw: Any):
    username = username or f"user{next_id()}"
    return get_user_model().objects.create_user(
        username=username,
        email=f"{username}@example.com",
        password="pw",
        is_staff=is_staff or is_superuser,
        is_superuser=is_superuser,
        **kw,
    )


def make_profile(*, role: str, user=None, display_name: str | None = None, **kw: Any) -> Profile:
    user = user or make_user(is_staff=(role == Role.STAFF))
    kw.setdefault("phone", make_phone() if role == Role.BUYER else "")
    return Profile.objects.create(user=user, role=role, display_name=display_name or user.username, **kw)


def make_buyer(**kw: Any) -> Profile:
    kw.setdefault("preferred_currency", "XAF")
    kw.setdefault("country", "CM")
    return make_profile(role=Role.BUYER, **kw)


def make_dealer(**kw: Any) -> Profile:
    kw.setdefault("company", "Maple Auto Export")
    kw.setdefault("country", "CA")
    return make_profile(role=Role.DEALER, **kw)


def make_broker(**kw: Any) -> Profile:
    kw.setdefault("preferred_currency", "USD")
    return make_profile(role=Role.BROKER, **kw)


def make_staff(**kw: Any) -> Profile:
    return make_profile(role=Role.STAFF, **kw)


# --- Vehicles, offers, leads, deals, commissions --------------------------------------------
def make_vehicle(
    *, dealer: Profile | None = None, status: str = Vehicle.Status.AVAILABLE, **kw: Any
) -> Vehicle:
    kw.setdefault("vin", make_vin())
    kw.setdefault("make", "Toyota")
    kw.setdefault("model", "RAV4")
    kw.setdefault("year", 2019)
    kw.setdefault("price_cad", Decimal("24500.00"))
    return Vehicle.objects.create(dealer=dealer or make_dealer(), status=status, **kw)


def make_offer(*, vehicle: Vehicle | None = None, buyer: Profile | None = None, **kw: Any) -> Offer:
    kw.setdefault("amount", Decimal("23000.00"))
    kw.setdefault("currency", "CAD")
    return Offer.objects.create(vehicle=vehicle or make_vehicle(), buyer=buyer or make_buyer(), **kw)


def make_lead(*, buyer: Profile | None = None, vehicle: Vehicle | None = None, **kw: Any) -> Lead:
    kw.setdefault("source", "whatsapp")
    return Lead.objects.create(buyer=buyer or make_buyer(), vehicle=vehicle or make_vehicle(), **kw)


def make_deal(
    *,
    buyer: Profile | None = None,
    dealer: Profile | None = None,
    broker: Profile | None | bool = True,
    vehicle: Vehicle | None = None,
    **kw: Any,
) -> Deal:
    """broker=True (default) makes a broker; broker=None makes a deal without one."""
    dealer = dealer or (vehicle.dealer if vehicle else make_dealer())
    vehicle = vehicle or make_vehicle(dealer=dealer, status=Vehicle.Status.RESERVED)
    if broker is True:
        broker = make_broker()
    kw.setdefault("agreed_price", vehicle.price_cad)
    kw.setdefault("currency", "CAD")
    return Deal.objects.create(
        buyer=buyer or make_buyer(), dealer=dealer, broker=broker or None, vehicle=vehicle, **kw
    )


def make_commission(*, deal: Deal | None = None, broker: Profile | None = None, **kw: Any) -> Commission:
    deal = deal or make_deal(status=Deal.Status.PAID)
    kw.setdefault("amount", (deal.agreed_price * Decimal("0.03")).quantize(Decimal("0.01")))
    kw.setdefault("currency", deal.currency)
    return Commission.objects.create(deal=deal, broker=broker or deal.broker or make_broker(), **kw)


# --- Billing --------------------------------------------------------------------------------
def make_invoice(*, deal: Deal | None = None, status: str = Invoice.Status.OPEN, **kw: Any) -> Invoice:
    deal = deal or make_deal(status=Deal.Status.INVOICED)
    kw.setdefault("number", f"INV-T-{next_id():06d}")
    kw.setdefault("amount", deal.agreed_price)
    kw.setdefault("currency", deal.currency)
    kw.setdefault("due_date", timezone.localdate() + timedelta(days=14))
    return Invoice.objects.create(deal=deal, status=status, **kw)


def make_payment_attempt(*, invoice: Invoice | None = None, number: int = 1, **kw: Any) -> PaymentAttempt:
    invoice = invoice or make_invoice()
    kw.setdefault("idempotency_key", f"invoice-{invoice.pk}-attempt-{number}")
    kw.setdefault("amount", invoice.amount)
    kw.setdefault("currency", invoice.currency)
    return PaymentAttempt.objects.create(invoice=invoice, number=number, **kw)


def make_exchange_rate(
    *,
    base: str = "CAD",
    quote: str = "XAF",
    rate: Decimal = Decimal("441.2345678900"),
    as_of: date | None = None,
    **kw: Any,
) -> ExchangeRate:
    kw.setdefault("source", "test")
    return ExchangeRate.objects.create(
        base=base, quote=quote, rate=rate, as_of=as_of or timezone.localdate(), **kw
    )


# --- Logistics ------------------------------------------------------------------------------
def make_shipment(
    *, deal: Deal | None = None, status: str = Shipment.Status.IN_TRANSIT, **kw: Any
) -> Shipment:
    kw.setdefault("origin_port", "Halifax")
    kw.setdefault("destination_port", "Douala")
    kw.setdefault("carrier", "Atlantic RoRo")
    kw.setdefault("tracking_number", f"TRK{next_id():08d}")
    kw.setdefault("eta", timezone.now() + timedelta(days=20))
    return Shipment.objects.create(deal=deal or make_deal(status=Deal.Status.SHIPPING), status=status, **kw)


def make_shipment_event(
    *, shipment: Shipment | None = None, kind: str = ShipmentEvent.Kind.DEPARTED, **kw: Any
) -> ShipmentEvent:
    return ShipmentEvent.objects.create(shipment=shipment or make_shipment(), kind=kind, **kw)


# --- Messaging, reports, audit --------------------------------------------------------------
def make_whatsapp_message(**kw: Any) -> WhatsAppMessage:
    kw.setdefault("to", make_phone())
    kw.setdefault("body", "Your vehicle has left Halifax.")
    kw.setdefault("scope", f"job-{next_id()}")
    kw.setdefault("idempotency_key", "message")
    return WhatsAppMessage.objects.create(**kw)


def make_bulk_batch(*, recipients: int = 3, **kw: Any) -> BulkBatch:
    """A bulk send's batch with `recipients` queued rows."""
    kw.setdefault("job_id", str(uuid.uuid4()))
    kw.setdefault("body", "The port of Douala reopens Monday.")
    batch = BulkBatch.objects.create(total=recipients, **kw)
    for n in range(recipients):
        make_whatsapp_message(scope=batch.job_id, idempotency_key=f"to:{n}", body=batch.body)
    return batch


def make_vehicle_history_report(*, vin: str | None = None, **kw: Any) -> VehicleHistoryReport:
    kw.setdefault("provider", "console")
    kw.setdefault("payload", {"accidents": 0, "owners": 2})
    return VehicleHistoryReport.objects.create(vin=vin or make_vin(), **kw)


def make_dashboard_snapshot(*, dealer: Profile | None | bool = True, **kw: Any) -> DashboardSnapshot:
    """A dealer's performance snapshot (dealer=True makes the dealer); dealer=None: the market's."""
    if dealer is True:
        dealer = make_dealer()
    kind = "dealer_performance" if dealer else "analytics_dashboard"
    kw.setdefault("key", f"dealer:{dealer.pk}" if dealer else "market")
    kw.setdefault("payload", {"vehicles_listed": 0})
    kw.setdefault("computed_at", timezone.now())
    kw.setdefault("etag", f"etag{next_id()}")
    return DashboardSnapshot.objects.create(kind=kind, dealer=dealer or None, **kw)


def make_audit_log(*, created_at: datetime | None = None, **kw: Any) -> AuditLog:
    kw.setdefault("actor", "test")
    kw.setdefault("action", "status:open->paid")
    kw.setdefault("object_type", "billing.invoice")
    kw.setdefault("object_id", str(next_id()))
    return AuditLog.objects.create(created_at=created_at or timezone.now(), **kw)
