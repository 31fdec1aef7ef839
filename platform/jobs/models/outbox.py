"""The transactional outbox: a job written in the same transaction as the data it is about."""

import uuid

from django.db import models
from django.db.models import Q


class OutboxMessage(models.Model):
    # The Celery task id the job is published under, every time: republishing the same row
    # is a redelivery of one job, which the task's effect ledger makes harmless.
    job_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task_name = models.CharField(max_length=255, db_index=True)
    kwargs = models.JSONField(default=dict, blank=True)
    queue = models.CharField(max_length=100, blank=True)
    eta = models.DateTimeField(null=True, blank=True, help_text="Not before this time (countdown).")
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    publish_attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, blank=True, help_text="SUCCESS, or FAILURE (a dead letter).")

    class Meta:
        indexes = [
            # The relay's sweep reads only open rows: a partial index keeps it one cheap
            # index scan however many completed rows the table holds.
            models.Index(
                fields=["published_at"], condition=Q(completed_at__isnull=True), name="outbox_open_idx"
            ),
            # The admin at a million rows (jobs/operations/admin_scale.py; migration 0003): the
            # published and completed filters (retention's cutoff too).
            models.Index(fields=["published_at"], name="outbox_published_idx"),
            models.Index(fields=["completed_at"], name="outbox_completed_idx"),
            # The list (id DESC) by task name and by outcome, newest first whatever their number
            # (jobs/operations/admin_scale.py; migration 0004, which dropped the plain (outcome) index).
            models.Index(fields=["task_name", "id"], name="outbox_task_id_idx"),
            models.Index(fields=["outcome", "id"], name="outbox_outcome_id_idx"),
            # The list by state: not completed, never published (id DESC), newest first however
            # many rows a broker outage leaves open (migration 0006). Partial: only open rows.
            models.Index(fields=["id"], condition=Q(completed_at__isnull=True), name="outbox_open_id_idx"),
            models.Index(
                fields=["id"], condition=Q(published_at__isnull=True), name="outbox_unpublished_id_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_name}[{self.job_id}]"

    @property
    def state(self) -> str:
        if self.completed_at:
            return "completed"
        return "published" if self.published_at else "pending"
