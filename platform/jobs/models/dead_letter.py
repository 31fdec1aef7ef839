"""A job that gave up, kept with everything needed to understand and replay it."""

from django.db import models


class DeadLetter(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        REPLAYED = "replayed", "Replayed"
        DISCARDED = "discarded", "Discarded"

    # The job's identity: a replay runs under the same id, so effects it already recorded in
    # the ledger are not repeated, and a replay that fails again updates this same row.
    task_id = models.CharField(max_length=255, unique=True)
    task_name = models.CharField(max_length=255, db_index=True)
    queue = models.CharField(max_length=100, blank=True)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    exception_type = models.CharField(max_length=255)
    exception_message = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=1, help_text="Executions that failed, over every replay.")
    first_failed_at = models.DateTimeField()
    last_failed_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    replay_count = models.PositiveIntegerField(default=0)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ("-last_failed_at",)
        indexes = [
            models.Index(fields=["status", "-last_failed_at"], name="deadletter_status_failed_idx"),
            # The admin at a million rows (jobs/operations/admin_scale.py): its default order and the
            # queue and exception filters (migration 0003, built concurrently). task_name's db_index comes
            # with a varchar_pattern_ops twin on PostgreSQL, which serves the task-name prefix search.
            models.Index(fields=["last_failed_at"], name="deadletter_last_failed_idx"),
            models.Index(fields=["queue"], name="deadletter_queue_idx"),
            models.Index(fields=["exception_type"], name="deadletter_exception_idx"),
            # A task's dead letters newest first, whatever their number: the task-name filter and
            # each name of a task-name prefix search (jobs/operations/admin_scale.py; migration 0004).
            models.Index(fields=["task_name", "last_failed_at", "id"], name="deadletter_task_failed_idx"),
            # And one status of them (open: the list ops staff work through), newest first (migration 0006).
            models.Index(
                fields=["task_name", "status", "last_failed_at", "id"], name="deadletter_task_status_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_name}[{self.task_id}]"
