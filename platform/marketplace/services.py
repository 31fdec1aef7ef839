"""Writes to the marketplace: people, vehicles, offers, leads, deals and commissions. Every
change is validated (ValidationError names the field) and audited in the same transaction."""

from datetime import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import create_audited, record_audit
from audit.transitions import apply_transition
from identifiers import normalize_vin
from marketplace.models import Commission, Deal, Lead, Offer, Profile, Role, Vehicle
from marketplace.money import BASE_CURRENCY, Currency, to_cents


# --- People ---------------------------------------------------------------------------------
def create_profile(
    *,
    username: str,
    role: str,
    display_name: str,
    actor: str,
    email: str = "",
    phone: str = "",
    preferred_currency: str = BASE_CURRENCY,
    company: str = "",
    country: str = "",
) -> Profile:
    """A login (auth.User, unusable password until one is set) and its marketplace profile."""
    with transaction.atomic():
        user = get_user_model().objects.create_user(
            username=username,
            email=email,
            is_staff=(role == Role.STAFF),
        )
        profile = Profile(
            user=user,
            role=role,
            display_name=display_name,
            phone=phone,
            preferred_currency=preferred_currency,
            company=company,
            country=country,
        )
        create_audited(obj=profile, actor=actor)
    return profile


# --- Vehicles and offers --------------------------------------------------------------------
def create_vehicle(
    *,
    dealer: Profile,
    vin: str,
    make: str,
    model: str,
    year: int,
    price_cad: Decimal,
    actor: str,
    mileage_km: int = 0,
    status: str = Vehicle.Status.DRAFT,
) -> Vehicle:
    vehicle = Vehicle(
        dealer=dealer,
        vin=normalize_vin(vin),
        make=make,
        model=model,
        year=year,
        price_cad=price_cad,
        mileage_km=mileage_km,
        status=status,
    )
    return create_audited(obj=vehicle, actor=actor)


def transition_vehicle(*, vehicle_id: int, to: str, actor: str) -> Vehicle:
    return apply_transition(model=Vehicle, pk=vehicle_id, to=to, actor=actor, table=Vehicle.TRANSITIONS)


def create_offer(*, vehicle: Vehicle, buyer: Profile, amount: Decimal, currency: str, actor: str) -> Offer:
    """An offer on an available vehicle; any other vehicle status raises on "vehicle"."""
    with transaction.atomic():
        # Lock the vehicle so it cannot be sold between the check (Offer.clean) and the insert.
        Vehicle.objects.select_for_update().filter(pk=vehicle.pk).first()
        return create_audited(
            obj=Offer(vehicle=vehicle, buyer=buyer, amount=amount, currency=currency),
            actor=actor,
        )


def transition_offer(*, offer_id: int, to: str, actor: str) -> Offer:
    return apply_transition(model=Offer, pk=offer_id, to=to, actor=actor, table=Offer.TRANSITIONS)


# --- Leads and deals ------------------------------------------------------------------------
def _touch(obj: Lead | Deal, old: str, new: str) -> dict:
    """A status change is activity: it restarts the idle clock and clears a stall flag."""
    now = timezone.now()
    changes = {"last_activity_at": [obj.last_activity_at, now]}
    if obj.stalled_flagged_at is not None:
        changes["stalled_flagged_at"] = [obj.stalled_flagged_at, None]
    obj.last_activity_at, obj.stalled_flagged_at = now, None
    return changes


def create_lead(*, buyer: Profile, vehicle: Vehicle, actor: str, source: str = "") -> Lead:
    return create_audited(obj=Lead(buyer=buyer, vehicle=vehicle, source=source), actor=actor)


def transition_lead(*, lead_id: int, to: str, actor: str) -> Lead:
    return apply_transition(
        model=Lead, pk=lead_id, to=to, actor=actor, table=Lead.TRANSITIONS, on_enter=_touch
    )


def create_deal(
    *,
    buyer: Profile,
    dealer: Profile,
    vehicle: Vehicle,
    agreed_price: Decimal,
    currency: str,
    actor: str,
    broker: Profile | None = None,
    lead: Lead | None = None,
) -> Deal:
    deal = Deal(
        buyer=buyer,
        dealer=dealer,
        broker=broker,
        vehicle=vehicle,
        lead=lead,
        agreed_price=agreed_price,
        currency=currency,
    )
    return create_audited(obj=deal, actor=actor)


def transition_deal(*, deal_id: int, to: str, actor: str) -> Deal:
    return apply_transition(
        model=Deal, pk=deal_id, to=to, actor=actor, table=Deal.TRANSITIONS, on_enter=_touch
    )


def record_activity(*, obj: Lead | Deal, actor: str, note: str = "", at: datetime | None = None) -> None:
    """A message, call or visit on a lead or deal: restarts its idle clock, clears its stall flag."""
    at = at or timezone.now()
    with transaction.atomic():
        type(obj).objects.filter(pk=obj.pk).update(last_activity_at=at, stalled_flagged_at=None)
        record_audit(
            actor=actor, action="activity", obj=obj, changes={"last_activity_at": [None, at], "note": note}
        )
    obj.last_activity_at, obj.stalled_flagged_at = at, None


def flag_stalled(*, obj: Lead | Deal, now: datetime, actor: str) -> bool:
    """Mark one idle lead or deal as followed up. Conditional update: True for the one caller
    that flagged it, False if it was already flagged (a rerun or a concurrent job)."""
    with transaction.atomic():
        claimed = (
            type(obj)
            .objects.filter(pk=obj.pk, stalled_flagged_at__isnull=True)
            .update(stalled_flagged_at=now)
        )
        if claimed:
            record_audit(
                actor=actor, action="flag_stalled", obj=obj, changes={"stalled_flagged_at": [None, now]}
            )
    return bool(claimed)


# --- Commissions ----------------------------------------------------------------------------
def create_commission(
    *,
    deal: Deal,
    amount: Decimal,
    actor: str,
    currency: str | None = None,
    broker: Profile | None = None,
) -> Commission:
    broker = broker or deal.broker
    if broker is None:
        raise ValidationError({"broker": "This deal has no broker to pay a commission to."})
    commission = Commission(deal=deal, broker=broker, amount=amount, currency=currency or deal.currency)
    return create_audited(obj=commission, actor=actor)


def settle_commission(
    *,
    commission_id: int,
    exchange_rate: Decimal,
    actor: str,
    at: datetime | None = None,
) -> Commission:
    """pending -> settled, recording the rate used (CAD per unit of the commission's currency)
    and the amount in CAD. Settling twice raises on "status" and changes nothing."""
    if exchange_rate is None or Decimal(exchange_rate) <= 0:
        raise ValidationError({"exchange_rate": "The exchange rate must be positive."})

    def on_settle(obj: Commission, old: str, new: str) -> dict:
        obj.exchange_rate = Decimal(exchange_rate)
        rate = Decimal(1) if obj.currency == Currency.CAD else obj.exchange_rate
        obj.amount_cad = to_cents(obj.amount * rate)
        obj.settled_at = at or timezone.now()
        return {
            "exchange_rate": [None, obj.exchange_rate],
            "amount_cad": [None, obj.amount_cad],
            "settled_at": [None, obj.settled_at],
        }

    return apply_transition(
        model=Commission,
        pk=commission_id,
        to=Commission.Status.SETTLED,
        actor=actor,
        table=Commission.TRANSITIONS,
        on_enter=on_settle,
    )
