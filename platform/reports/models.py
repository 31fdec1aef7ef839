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
