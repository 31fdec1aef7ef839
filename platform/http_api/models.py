"""The trigger API's tables: API keys (hash only), jobs it accepted, Idempotency-Keys, webhook events.

Each table keeps the name it was created with under the app's first label, trigger_api
(http_api/apps.py)."""

import uuid

from django.db import models


class ApiKey(models.Model):
    """A credential of one calling service. The key itself is shown once, at creation; only the
    SHA-256 of it is kept (http_api/keys.py says why that is enough)."""

    name = models.CharField(max_length=100, unique=True, help_text="Who uses it, e.g. dealer-portal")
    # Not secret: the part of the key that finds its row (and tells keys apart in logs and admin).
    prefix = models.CharField(max_length=16, unique=True)
    hashed_secret = models.CharField(max_length=64, help_text="sha256 hex digest of the whole key")
    created_at = models.DateTimeField(auto_now_add=True)
    # Written at most once a minute per key (keys.note_use), not on every request.
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "trigger_api_apikey"
        ordering = ("name",)
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} (pk_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AcceptedJob(models.Model):
    """A job the API accepted: lets GET /api/v1/jobs/<id> tell "accepted, not started yet"
    (PENDING) from "never heard of it" (404) before the worker has written a result."""

    job_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task_name = models.CharField(max_length=255)
    api_key = models.ForeignKey(ApiKey, on_delete=models.PROTECT, related_name="accepted_jobs")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "trigger_api_acceptedjob"

    def __str__(self) -> str:
        return f"{self.task_name}[{self.job_id}]"


class IdempotencyRecord(models.Model):
    """An Idempotency-Key one API key used, the hash of the body it came with, and the job it
    created. Unique per API key: two racing requests with one key create one job. Lives 24 h."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    body_hash = models.CharField(max_length=64)
    job = models.ForeignKey(AcceptedJob, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "trigger_api_idempotencyrecord"
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_once_per_api_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} -> {self.job_id}"


class WebhookEvent(models.Model):
    """A provider event already taken in: a replayed delivery (same event id) is acknowledged
    and changes nothing."""

    provider = models.CharField(max_length=20)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    job_id = models.CharField(max_length=255, blank=True, help_text="The job that applies it, if any")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "trigger_api_webhookevent"
        ordering = ("-received_at",)
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_event_once"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} {self.event_id}"
