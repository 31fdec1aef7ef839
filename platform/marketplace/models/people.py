"""People: a Profile with a role beside Django's auth.User, rather than a custom user model.

Why a profile: the project's first migrations already point at auth.User (admin, sessions,
jobs), and swapping AUTH_USER_MODEL after that is a notoriously painful migration. Buyers,
dealers and brokers differ only in a few fields (phone, preferred currency, company), so one
table with a role keeps deals' foreign keys simple; services check the role where it matters
(a deal's buyer must be a buyer). Staff are Profiles with role=staff and is_staff on the User.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from identifiers import mask_phone
from marketplace.money import currency_field
from marketplace.validators import validate_e164_phone


class Role(models.TextChoices):
    BUYER = "buyer", "Buyer"
    DEALER = "dealer", "Dealer"
    BROKER = "broker", "Broker"
    STAFF = "staff", "Staff"


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="profile")
    role = models.CharField(max_length=16, choices=Role.choices)
    display_name = models.CharField(max_length=200)
    company = models.CharField(max_length=200, blank=True, help_text="Dealership or brokerage")
    # WhatsApp-capable, E.164. Required for buyers (clean()): it is how they are notified.
    phone = models.CharField(max_length=16, blank=True, validators=[validate_e164_phone])
    preferred_currency = currency_field()
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("display_name",)
        indexes = [models.Index(fields=["role", "display_name"], name="profile_role_name_idx")]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.role})"

    def clean(self) -> None:
        if self.role == Role.BUYER and not self.phone:
            raise ValidationError({"phone": "Buyers need a WhatsApp phone number."})

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)


def check_role(errors: dict[str, str], field: str, profile: "Profile | None", role: str) -> None:
    """Collect an error on `field` when `profile` is set but does not have `role`."""
    if profile is not None and profile.role != role:
        errors[field] = f"{profile.display_name} is a {profile.role}, not a {role}."
