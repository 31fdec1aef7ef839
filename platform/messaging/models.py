"""WhatsApp messages: one row per message, recorded before it is sent through Twilio and
updated from Twilio's status callbacks, so a retried job never sends a message twice.

A recipient's number and a message's text are personal: their columns are sealed (encrypted with
SEALED_ARGUMENT_KEYS, jobs/sealing.py SealedTextField), clear only in Python. So they cannot be
searched: rows are found by job (scope), Twilio SID or status, never by number."""

from django.db import models

from identifiers import mask_phone
from jobs.sealing import SealedTextField
from marketplace.validators import validate_e164_phone


class WhatsAppMessage(models.Model):
    class Status(models.TextChoices):
        # Ours, before Twilio has it:
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        # Twilio's (https://www.twilio.com/docs/messaging/api/message-resource#message-status-values):
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        READ = "read", "Read"
        FAILED = "failed", "Failed"
        UNDELIVERED = "undelivered", "Undelivered"
        # Ours again: its bulk batch was cancelled before it was sent (messaging/batches.py).
        CANCELLED = "cancelled", "Cancelled"

    # How far along each status is: a late "sent" callback must not overwrite "read".
    PROGRESS = {
        Status.QUEUED: 0,
        Status.SENDING: 1,
        Status.SENT: 2,
        Status.DELIVERED: 3,
        Status.READ: 4,
        Status.FAILED: 5,
        Status.UNDELIVERED: 5,
        Status.CANCELLED: 5,
    }

    to = SealedTextField(validators=[validate_e164_phone], help_text="E.164, no whatsapp: prefix")
    body = SealedTextField(blank=True)
    template = models.CharField(max_length=64, blank=True, help_text="Twilio Content SID (HX...)")
    variables = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    twilio_sid = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # Whose message it is and the key it used: unique together, so a redelivered or replayed job
    # finds its own row instead of creating (and sending) a second message. The scope is the id
    # of the job that sends it (a bulk send's: its batch), or a stable scope for a message due
    # once per subject rather than once per job ("follow-up": messaging/whatsapp.py). Its column
    # keeps the name it was created with.
    scope = models.CharField(max_length=255, blank=True, db_column="job_id")
    idempotency_key = models.CharField(max_length=255)
    error_code = models.CharField(max_length=20, blank=True)
    error_message = models.TextField(blank=True)
    vehicle = models.ForeignKey(
        "marketplace.Vehicle",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="whatsapp_messages",
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "idempotency_key"], name="whatsapp_once_per_job_and_key"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="whatsapp_status_created_idx"),
            # A batch's progress is one aggregate over its rows, served by this index alone
            # (messaging/batches.py): counts stay exact because the rows are the truth.
            models.Index(fields=["scope", "status"], include=["sent_at"], name="whatsapp_job_status_idx"),
        ]

    def __str__(self) -> str:
        return f"WhatsApp to {mask_phone(self.to)} ({self.status})"


class BulkBatch(models.Model):
    """One bulk WhatsApp send, followed as a batch: its recipients are the WhatsAppMessage rows
    whose scope is this batch's job_id; every count is read from them (messaging/batches.py)."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        CANCELLED = "cancelled", "Cancelled"
        DONE = "done", "Done"

    job_id = models.CharField(max_length=255, unique=True, help_text="The bulk job's id")
    body = SealedTextField()
    total = models.PositiveIntegerField(help_text="Recipients (a number given twice counts once)")
    chunks = models.PositiveIntegerField(
        default=0, help_text="Chunk jobs it fanned out to (0: sent by itself)"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    # Set when a send found the shared Twilio limit spent: "paused by the rate limit" until then.
    paused_until = models.DateTimeField(null=True, blank=True)
    on_complete = models.CharField(max_length=200, blank=True, help_text="Task run when the batch is done")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ("-started_at",)
        indexes = [
            models.Index(fields=["-started_at"], name="bulkbatch_started_idx"),
            models.Index(fields=["state", "-started_at"], name="bulkbatch_state_started_idx"),
        ]

    def __str__(self) -> str:
        return f"Bulk WhatsApp {self.job_id} ({self.total} recipients, {self.state})"
