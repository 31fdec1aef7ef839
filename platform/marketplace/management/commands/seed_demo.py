"""`python manage.py seed_demo`: a realistic demo marketplace in which every scheduled task has
work. Idempotent: every row has a stable natural key (username, VIN, invoice number...), so a
second run restores the demo rows to their seeded state instead of adding more."""

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from audit.models import AuditLog
from billing.models import ExchangeRate, Invoice, PaymentAttempt
from logistics.models import Shipment, ShipmentEvent
from marketplace.models import Commission, Deal, Lead, Offer, Profile, Role, Vehicle
from messaging.models import WhatsAppMessage
from reports.models import VehicleHistoryReport

SEED = "seed_demo"  # actor, job id and provider of seeded rows

DEALERS = [
    ("demo_dealer_maple", "Maple Auto Export", "Halifax"),
    ("demo_dealer_northern", "Northern Lights Motors", "Montreal"),
    ("demo_dealer_pacific", "Pacific Rim Autos", "Vancouver"),
]
BUYERS = [
    ("demo_buyer_amina", "Amina Njoya", "+237670000101", "XAF", "CM"),
    ("demo_buyer_jean", "Jean-Paul Mbarga", "+237670000102", "XAF", "CM"),
    ("demo_buyer_fatou", "Fatou Diallo", "+221770000103", "USD", "SN"),
    ("demo_buyer_kwame", "Kwame Mensah", "+233240000104", "USD", "GH"),
    ("demo_buyer_chantal", "Chantal Okafor", "+237670000105", "XAF", "CM"),
    ("demo_buyer_olivier", "Olivier Tchamba", "+14165550106", "CAD", "CA"),
]
BROKERS = [
    ("demo_broker_sarah", "Sarah Broker (Douala Link)", "+14165550201", "CAD"),
    ("demo_broker_ibrahim", "Ibrahim Export Services", "+237670000202", "USD"),
]
MODELS = [
    ("Toyota", "RAV4"),
    ("Toyota", "Corolla"),
    ("Honda", "CR-V"),
    ("Honda", "Civic"),
    ("Ford", "F-150"),
    ("Hyundai", "Tucson"),
    ("Nissan", "Rogue"),
    ("Mazda", "CX-5"),
    ("Lexus", "RX 350"),
    ("Chevrolet", "Equinox"),
]
VEHICLE_COUNT = 40
VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"  # no I, O, Q

# Per deal status: two deals each, with the vehicle status that goes with it.
DEAL_PLAN = [
    (Deal.Status.NEGOTIATING, Vehicle.Status.RESERVED),
    (Deal.Status.AGREED, Vehicle.Status.RESERVED),
    (Deal.Status.INVOICED, Vehicle.Status.RESERVED),
    (Deal.Status.PAID, Vehicle.Status.SOLD),
    (Deal.Status.SHIPPING, Vehicle.Status.SOLD),
    (Deal.Status.COMPLETED, Vehicle.Status.EXPORTED),
    (Deal.Status.CANCELLED, Vehicle.Status.AVAILABLE),
]
RATES = {  # units of quote per unit of base
    ("CAD", "USD"): Decimal("0.7312000000"),
    ("USD", "CAD"): Decimal("1.3676148796"),
    ("CAD", "XAF"): Decimal("441.5300000000"),
    ("XAF", "CAD"): Decimal("0.0022648518"),
    ("USD", "XAF"): Decimal("603.8500000000"),
    ("XAF", "USD"): Decimal("0.0016560404"),
}


def demo_vin(n: int) -> str:
    serial = ""
    for _ in range(6):
        n, r = divmod(n, len(VIN_CHARS))
        serial = VIN_CHARS[r] + serial
    return f"DEM0V1N00AA{serial}"  # 11 + 6 = 17 characters


class Command(BaseCommand):
    help = "Create (or restore) the demo marketplace: vehicles, deals in every state, invoices, shipments."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        self.now = timezone.now()
        self.today = timezone.localdate()
        dealers = [self._profile(u, Role.DEALER, name, company=name, country="CA") for u, name, _ in DEALERS]
        buyers = [
            self._profile(u, Role.BUYER, name, phone=phone, preferred_currency=cur, country=country)
            for u, name, phone, cur, country in BUYERS
        ]
        brokers = [
            self._profile(u, Role.BROKER, name, phone=phone, preferred_currency=cur, company=name)
            for u, name, phone, cur in BROKERS
        ]
        vehicles = self._vehicles(dealers)
        deals = self._deals(vehicles, buyers, brokers)
        self._leads_and_offers(vehicles, buyers)
        self._invoices(deals)
        self._shipments(deals)
        self._commissions(deals)
        self._exchange_rates()
        self._messages_reports_audit(vehicles, buyers)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo marketplace ready: {len(vehicles)} vehicles, {len(deals)} deals "
                f"(every status), overdue invoices, a delayed shipment, pending commissions."
            )
        )

    # --- people -----------------------------------------------------------------------------
    def _profile(self, username: str, role: str, name: str, **fields) -> Profile:
        user, created = get_user_model().objects.get_or_create(
            username=username,
            defaults={"email": f"{username}@demo.invalid"},
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        profile, _ = Profile.objects.update_or_create(
            user=user,
            defaults={"role": role, "display_name": name, **fields},
        )
        return profile

    # --- vehicles and deals -----------------------------------------------------------------
    def _vehicles(self, dealers: list[Profile]) -> list[Vehicle]:
        vehicles = []
        for i in range(VEHICLE_COUNT):
            make, model = MODELS[i % len(MODELS)]
            status = Vehicle.Status.DRAFT if i % 9 == 8 else Vehicle.Status.AVAILABLE
            vehicle, _ = Vehicle.objects.update_or_create(
                vin=demo_vin(i + 1),
                defaults={
                    "make": make,
                    "model": model,
                    "year": 2012 + i % 12,
                    "mileage_km": 30000 + 4100 * i,
                    "price_cad": Decimal(12000 + 850 * i),
                    "dealer": dealers[i % len(dealers)],
                    "status": status,
                },
            )
            vehicles.append(vehicle)
        return vehicles

    def _deals(self, vehicles, buyers, brokers) -> list[Deal]:
        deals = []
        for n, (deal_status, vehicle_status) in enumerate(p for p in DEAL_PLAN for _ in range(2)):
            vehicle = vehicles[n]
            vehicle.status = vehicle_status
            vehicle.save(update_fields=["status", "updated_at"])
            # The first deal of each open status has been idle for two weeks: a stalled deal.
            idle = (
                timedelta(days=14) if n % 2 == 0 and deal_status in Deal.OPEN_STATUSES else timedelta(hours=n)
            )
            buyer = buyers[n % len(buyers)]
            deal, _ = Deal.objects.update_or_create(
                vehicle=vehicle,
                defaults={
                    "buyer": buyer,
                    "dealer": vehicle.dealer,
                    "broker": brokers[n % len(brokers)],
                    "agreed_price": vehicle.price_cad - Decimal(500),
                    "currency": "CAD",
                    "status": deal_status,
                    "last_activity_at": self.now - idle,
                    "stalled_flagged_at": None,
                },
            )
            deals.append(deal)
        return deals

    def _leads_and_offers(self, vehicles, buyers) -> None:
        available = [v for v in vehicles if v.status == Vehicle.Status.AVAILABLE]
        lead_statuses = [Lead.Status.NEW, Lead.Status.CONTACTED, Lead.Status.QUALIFIED, Lead.Status.LOST]
        for i, vehicle in enumerate(available[:12]):
            # Every third lead has gone quiet for five days: a stalled lead.
            idle = timedelta(days=5) if i % 3 == 0 else timedelta(hours=i + 1)
            Lead.objects.update_or_create(
                buyer=buyers[i % len(buyers)],
                vehicle=vehicle,
                defaults={
                    "status": lead_statuses[i % len(lead_statuses)],
                    "source": ("whatsapp", "web")[i % 2],
                    "last_activity_at": self.now - idle,
                    "stalled_flagged_at": None,
                },
            )
        for i, vehicle in enumerate(available[12:20]):
            Offer.objects.update_or_create(
                vehicle=vehicle,
                buyer=buyers[(i + 1) % len(buyers)],
                defaults={
                    "amount": vehicle.price_cad - Decimal(1000),
                    "currency": "CAD",
                    "status": Offer.Status.PENDING,
                },
            )

    # --- billing ----------------------------------------------------------------------------
    def _invoices(self, deals: list[Deal]) -> None:
        for n, deal in enumerate(deals):
            if deal.status in (Deal.Status.NEGOTIATING, Deal.Status.CANCELLED):
                continue
            if deal.status == Deal.Status.AGREED:
                status, due = Invoice.Status.DRAFT, self.today + timedelta(days=14)
            elif deal.status == Deal.Status.INVOICED:
                # Both overdue; one already failed a card payment.
                status = Invoice.Status.OPEN if n % 2 == 0 else Invoice.Status.FAILED
                due = self.today - timedelta(days=3 + n)
            else:
                status, due = Invoice.Status.PAID, self.today - timedelta(days=30)
            invoice, _ = Invoice.objects.update_or_create(
                number=f"INV-DEMO-{n + 1:04d}",
                defaults={
                    "deal": deal,
                    "amount": deal.agreed_price,
                    "currency": deal.currency,
                    "due_date": due,
                    "status": status,
                    "last_reminder_on": None,
                    "paid_at": self.now - timedelta(days=28) if status == Invoice.Status.PAID else None,
                },
            )
            if status == Invoice.Status.FAILED:
                PaymentAttempt.objects.update_or_create(
                    idempotency_key=f"demo-invoice-{invoice.number}-1",
                    defaults={
                        "invoice": invoice,
                        "number": 1,
                        "amount": invoice.amount,
                        "currency": invoice.currency,
                        "stripe_status": "requires_payment_method",
                        "error_code": "card_declined",
                        "error_message": "Your card was declined.",
                    },
                )
        # A pending invoice the payment task can move forward today.
        agreed = next(d for d in deals if d.status == Deal.Status.AGREED)
        Invoice.objects.update_or_create(
            number="INV-DEMO-0100",
            defaults={
                "deal": agreed,
                "amount": Decimal("2500.00"),
                "currency": "USD",
                "due_date": self.today + timedelta(days=7),
                "status": Invoice.Status.OPEN,
                "last_reminder_on": None,
                "paid_at": None,
            },
        )

    def _exchange_rates(self) -> None:
        for days_ago in range(3):
            for (base, quote), rate in RATES.items():
                ExchangeRate.objects.update_or_create(
                    base=base,
                    quote=quote,
                    as_of=self.today - timedelta(days=days_ago),
                    defaults={"rate": rate, "source": SEED},
                )

    # --- logistics and commissions ----------------------------------------------------------
    def _shipments(self, deals: list[Deal]) -> None:
        plan = {
            Deal.Status.SHIPPING: Shipment.Status.IN_TRANSIT,
            Deal.Status.COMPLETED: Shipment.Status.DELIVERED,
        }
        for n, deal in enumerate(d for d in deals if d.status in plan):
            status = plan[deal.status]
            # The first shipping deal's vessel is three days late: a delayed shipment.
            eta = self.now + (timedelta(days=-3) if n == 0 else timedelta(days=12 + n))
            shipment, _ = Shipment.objects.update_or_create(
                tracking_number=f"DEMO-TRK-{n + 1:03d}",
                defaults={
                    "deal": deal,
                    "status": status,
                    "carrier": "Atlantic RoRo",
                    "origin_port": "Halifax",
                    "destination_port": "Douala",
                    "eta": eta,
                    "departed_at": self.now - timedelta(days=18),
                    "last_delay_alert_on": None,
                    "last_buyer_update_at": self.now - timedelta(days=2),
                },
            )
            kinds = [ShipmentEvent.Kind.BOOKED, ShipmentEvent.Kind.DEPARTED]
            if status == Shipment.Status.DELIVERED:
                kinds += [ShipmentEvent.Kind.ARRIVED, ShipmentEvent.Kind.DELIVERED]
            for k, kind in enumerate(kinds):
                # The latest event of a moving shipment is not yet told to the buyer.
                untold = status == Shipment.Status.IN_TRANSIT and k == len(kinds) - 1
                ShipmentEvent.objects.update_or_create(
                    shipment=shipment,
                    kind=kind,
                    defaults={
                        "occurred_at": self.now - timedelta(days=20 - 2 * k),
                        "notified_at": None if untold else self.now - timedelta(days=19 - 2 * k),
                    },
                )

    def _commissions(self, deals: list[Deal]) -> None:
        for deal in deals:
            if deal.status not in (Deal.Status.PAID, Deal.Status.SHIPPING, Deal.Status.COMPLETED):
                continue
            settled = deal.status == Deal.Status.COMPLETED
            amount = (deal.agreed_price * Decimal("0.025")).quantize(Decimal("0.01"))
            Commission.objects.update_or_create(
                deal=deal,
                broker=deal.broker,
                defaults={
                    "amount": amount,
                    "currency": deal.currency,
                    "status": Commission.Status.SETTLED if settled else Commission.Status.PENDING,
                    "exchange_rate": Decimal(1) if settled else None,
                    "amount_cad": amount if settled else None,
                    "settled_at": self.now - timedelta(days=3) if settled else None,
                    "created_at": self.now - timedelta(days=10),
                },
            )

    # --- messages, reports, audit -----------------------------------------------------------
    def _messages_reports_audit(self, vehicles, buyers) -> None:
        for i, buyer in enumerate(buyers[:3]):
            WhatsAppMessage.objects.update_or_create(
                scope=SEED,
                idempotency_key=f"welcome-{buyer.user.username}",
                defaults={
                    "to": buyer.phone,
                    "body": "Welcome to the marketplace!",
                    "status": WhatsAppMessage.Status.DELIVERED,
                    "twilio_sid": f"SMDEMO{i:026d}",
                    "vehicle": vehicles[i],
                },
            )
        for vehicle in vehicles[:3]:
            VehicleHistoryReport.objects.update_or_create(
                vin=vehicle.vin,
                provider=SEED,
                defaults={
                    "payload": {"accidents": 0, "owners": 2, "odometer_km": vehicle.mileage_km},
                    "fetched_at": self.now - timedelta(hours=2),
                    "paid_call": False,
                },
            )
        # Entries past retention, for cleanup_old_audit_logs; and a few recent ones.
        for i in range(30):
            age = timedelta(days=400 + i) if i < 25 else timedelta(days=i - 24)
            AuditLog.objects.update_or_create(
                actor=SEED,
                action="status:negotiating->agreed",
                object_type="marketplace.deal",
                object_id=f"demo-{i}",
                defaults={"created_at": self.now - age, "changes": {"seed": True}},
            )
