"""Vehicle-history reports (CarFax-like): each provider answer kept, since every call is paid."""

from django.db import models
from django.utils import timezone

from marketplace.validators import validate_vin


class VehicleHistoryReport(models.Model):
    vin = models.CharField("VIN", max_length=17, validators=[validate_vin])
    provider = models.CharField(max_length=50)
    payload = models.JSONField(default=dict, blank=True)
    fetched_at = models.DateTimeField(default=timezone.now)
    # False when the answer came from our cache or a free re-read: what the invoice counts.
    paid_call = models.BooleanField(default=True)

    class Meta:
        ordering = ("-fetched_at",)
        indexes = [
            # The freshest report for a VIN (reports.selectors.latest_report).
            models.Index(fields=["vin", "-fetched_at"], name="vhr_vin_fetched_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.vin} from {self.provider} at {self.fetched_at:%Y-%m-%d %H:%M}"


class DashboardSnapshot(models.Model):
    """The last computed dashboard of one kind (and dealer): what admin and the API serve.

    One row per `key`, overwritten by each refresh (reports/market_dashboards.py); `key` is also the
    snapshot's Redis cache key, and `etag` a hash of `payload`, so an unchanged dashboard keeps
    its ETag across refreshes."""

    class Kind(models.TextChoices):
        DEALER_PERFORMANCE = "dealer_performance", "Dealer performance"
        ANALYTICS_DASHBOARD = "analytics_dashboard", "Marketplace analytics"

    key = models.CharField(max_length=64, unique=True, help_text="e.g. dealer:42 or market")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    dealer = models.ForeignKey(
        "marketplace.Profile",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="dashboard_snapshots",
        limit_choices_to={"role": "dealer"},
    )
    payload = models.JSONField(default=dict)
    computed_at = models.DateTimeField()
    etag = models.CharField(max_length=64)

    class Meta:
        ordering = ("kind", "key")
        indexes = [models.Index(fields=["kind", "computed_at"], name="snapshot_kind_computed_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.key} at {self.computed_at:%Y-%m-%d %H:%M}"
