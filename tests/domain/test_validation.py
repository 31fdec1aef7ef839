"""Bad input at the services: each raises a ValidationError naming the wrong field and leaves
the data unchanged."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditLog
from billing.models import ExchangeRate, Invoice
from billing.services import create_invoice, record_exchange_rate, transition_invoice
from marketplace.models import Deal, Offer, Profile, Vehicle
from marketplace.services import create_deal, create_offer, create_profile, create_vehicle, transition_vehicle
from marketplace.validators import validate_e164_phone, validate_vin
from messaging.models import WhatsAppMessage
from messaging.services import record_whatsapp_message
from reports.models import VehicleHistoryReport
from reports.services import store_report
from tests import factories as f

pytestmark = pytest.mark.django_db


def raises_on(field: str, call, *models):
    """Run `call`, expect ValidationError on `field`, and no new rows in `models` or the audit log."""
    counts = {m: m.objects.count() for m in (*models, AuditLog)}
    with pytest.raises(ValidationError) as exc:
        call()
    assert field in exc.value.message_dict, exc.value.message_dict
    assert {m: m.objects.count() for m in counts} == counts
    return exc.value.message_dict[field]


@pytest.mark.parametrize(
    "vin",
    [
        "1HGCM82633A00435",
        "1HGCM82633A0043521",
        "1HGCM82633A00435I",
        "1HGCM82633A00435O",
        "1HGCM82633Q004352",
        "1HGCM82633A-04352",
        "",
    ],
)
def test_invalid_vin_is_refused(vin):
    dealer = f.make_dealer()
    raises_on(
        "vin",
        lambda: create_vehicle(
            dealer=dealer,
            vin=vin,
            make="Honda",
            model="Accord",
            year=2015,
            price_cad=Decimal("9000"),
            actor="t",
        ),
        Vehicle,
    )


def test_vin_is_normalized_to_uppercase():
    vehicle = create_vehicle(
        dealer=f.make_dealer(),
        vin=" 1hgcm82633a004352 ",
        make="Honda",
        model="Accord",
        year=2015,
        price_cad=Decimal("9000"),
        actor="t",
    )
    assert vehicle.vin == "1HGCM82633A004352"
    validate_vin(vehicle.vin)


@pytest.mark.parametrize(
    "phone", ["4165550123", "+0416555012", "+1 416 555 0123", "whatsapp:+14165550123", "+1"]
)
def test_invalid_buyer_phone_is_refused_and_no_login_is_left_behind(phone):
    raises_on(
        "phone",
        lambda: create_profile(username="amina", role="buyer", display_name="Amina", phone=phone, actor="t"),
        Profile,
        get_user_model(),
    )


def test_buyer_without_phone_is_refused():
    raises_on(
        "phone", lambda: create_profile(username="b", role="buyer", display_name="B", actor="t"), Profile
    )


def test_e164_accepts_valid_numbers():
    for phone in ("+14165550123", "+237670000101", "+442071838750"):
        validate_e164_phone(phone)


def test_unknown_currency_is_refused():
    vehicle, buyer = f.make_vehicle(), f.make_buyer()
    raises_on(
        "currency",
        lambda: create_offer(vehicle=vehicle, buyer=buyer, amount=Decimal("1"), currency="EUR", actor="t"),
        Offer,
    )


def test_negative_amount_is_refused():
    deal = f.make_deal(status="invoiced")
    raises_on(
        "amount",
        lambda: create_invoice(
            deal=deal,
            amount=Decimal("-0.01"),
            currency="CAD",
            number="INV-1",
            due_date=timezone.localdate(),
            actor="t",
        ),
        Invoice,
    )


def test_negative_amount_is_also_refused_by_the_database():
    deal = f.make_deal(status="invoiced")
    with pytest.raises(IntegrityError), transaction.atomic():
        f.make_invoice(deal=deal, amount=Decimal("-5"))


def test_paid_invoice_cannot_go_back_to_awaiting_payment():
    invoice = f.make_invoice(status="paid")
    raises_on("status", lambda: transition_invoice(invoice_id=invoice.pk, to="open", actor="t"))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


def test_sold_vehicle_cannot_be_offered_again():
    vehicle, buyer = f.make_vehicle(status="sold"), f.make_buyer()
    message = raises_on(
        "vehicle",
        lambda: create_offer(vehicle=vehicle, buyer=buyer, amount=Decimal("100"), currency="CAD", actor="t"),
        Offer,
    )
    assert "sold" in message[0]


def test_sold_vehicle_cannot_be_made_available_again():
    vehicle = f.make_vehicle(status="sold")
    raises_on("status", lambda: transition_vehicle(vehicle_id=vehicle.pk, to="available", actor="t"))


def test_offer_on_available_vehicle_is_created_and_audited():
    vehicle, buyer = f.make_vehicle(), f.make_buyer()
    offer = create_offer(vehicle=vehicle, buyer=buyer, amount=Decimal("100"), currency="XAF", actor="t")
    assert AuditLog.objects.filter(
        object_type="marketplace.offer", object_id=str(offer.pk), action="create"
    ).exists()


def test_deal_parties_must_have_the_right_roles():
    dealer = f.make_dealer()
    vehicle = f.make_vehicle(dealer=dealer)
    errors = raises_on(
        "buyer",
        lambda: create_deal(
            buyer=f.make_dealer(),
            dealer=dealer,
            vehicle=vehicle,
            agreed_price=Decimal("1"),
            currency="CAD",
            actor="t",
        ),
        Deal,
    )
    assert any("not a buyer" in e for e in errors)
    raises_on(
        "vehicle",
        lambda: create_deal(
            buyer=f.make_buyer(),
            dealer=f.make_dealer(),
            vehicle=vehicle,
            agreed_price=Decimal("1"),
            currency="CAD",
            actor="t",
        ),
        Deal,
    )


def test_whatsapp_recipient_must_be_e164_without_prefix():
    raises_on(
        "to",
        lambda: record_whatsapp_message(to="whatsapp:+14165550123", body="x", scope="j", idempotency_key="k"),
        WhatsAppMessage,
    )


def test_vehicle_history_report_vin_is_validated():
    raises_on(
        "vin",
        lambda: store_report(vin="NOT-A-VIN", provider="p", payload={}, paid_call=True),
        VehicleHistoryReport,
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rate": Decimal("0")}, "rate"),
        ({"base": "EUR"}, "base"),
        ({"quote": "CAD"}, "quote"),
    ],
)
def test_bad_exchange_rate_is_refused(kwargs, field):
    args = {
        "base": "CAD",
        "quote": "XAF",
        "rate": Decimal("441.5"),
        "as_of": timezone.localdate(),
        "source": "t",
    }
    raises_on(field, lambda: record_exchange_rate(**{**args, **kwargs}), ExchangeRate)


def test_recording_the_same_days_rate_twice_corrects_it_instead_of_duplicating():
    day = timezone.localdate() - timedelta(days=1)
    record_exchange_rate(base="CAD", quote="USD", rate=Decimal("0.73"), as_of=day, source="a")
    record_exchange_rate(base="CAD", quote="USD", rate=Decimal("0.7312345678"), as_of=day, source="b")
    rate = ExchangeRate.objects.get(base="CAD", quote="USD", as_of=day)
    assert (rate.rate, rate.source) == (Decimal("0.7312345678"), "b")


def test_audit_entries_keep_phone_numbers_masked():
    profile = create_profile(
        username="amina", role="buyer", display_name="Amina", phone="+237670000101", actor="t"
    )
    entry = AuditLog.objects.get(object_type="marketplace.profile", object_id=str(profile.pk))
    assert entry.changes["phone"] == [None, "+2376******01"]
    assert "+237670000101" not in str(entry.changes)
