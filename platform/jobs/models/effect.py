"""The effect ledger: one row per effect a job has done (see jobs/ledger.py for the API)."""

from django.db import models


class Effect(models.Model):
    job_id = models.CharField(max_length=255)
    key = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job_id", "key"], name="effect_once_per_job_and_key"),
        ]
        indexes = [
            # The admin's key-prefix search at a million rows (jobs/operations/admin_scale.py;
            # migration 0003).
            models.Index(fields=["key"], name="effect_key_like_idx", opclasses=["varchar_pattern_ops"]),
        ]

    def __str__(self) -> str:
        return f"{self.key} by {self.job_id}"
