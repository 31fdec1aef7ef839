"""The schedule audit trail, and the fingerprint of each default that sync_schedules last applied."""

from django.conf import settings
from django.db import models


class AppliedDefault(models.Model):
    """What sync_schedules last wrote for one default schedule, as a fingerprint.

    A schedule whose current fields still hash to this was not edited since, so a newer default
    may replace it; anything else is an operator's edit and is kept.
    """

    name = models.CharField(max_length=200, unique=True)
    fingerprint = models.CharField(max_length=64)
    applied_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class ScheduleChange(models.Model):
    """One change to a periodic task (or to its crontab/interval): who, when, what changed."""

    class Source(models.TextChoices):
        ADMIN = "admin", "admin"
        SYNC = "sync_schedules", "sync_schedules"
        OTHER = "other", "other"

    class Action(models.TextChoices):
        CREATED = "created", "created"
        UPDATED = "updated", "updated"
        RESET = "reset", "reset to default"
        DELETED = "deleted", "deleted"
        RAN_NOW = "ran_now", "run now"

    # SET_NULL: the history outlives a deleted schedule; schedule_name says which one it was.
    periodic_task = models.ForeignKey(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_changes",
    )
    schedule_name = models.CharField(max_length=200, db_index=True)
    actor = models.CharField(max_length=150, help_text="Username, or the command that changed it.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    source = models.CharField(max_length=20, choices=Source.choices)
    action = models.CharField(max_length=10, choices=Action.choices)
    # {"field": [before, after], ...}; fields are those of schedules.audit.snapshot().
    changes = models.JSONField(default=dict)
    changed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-changed_at", "-id")

    def __str__(self) -> str:
        return f"{self.schedule_name} {self.action} by {self.actor}"


class BeatLease(models.Model):
    """Which beat leads, and its heartbeat: one row per lease, in PostgreSQL (not Redis).

    Taken and renewed by compare-and-set on the database's clock (jobs/schedules/scheduler.py):
    `UPDATE ... WHERE holder = me OR expires_at < now()`. A row, not a session advisory lock,
    because a connection pooler (PgBouncer in transaction mode) hands a session's lock to
    whichever client gets the connection next.
    """

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=200)
    expires_at = models.DateTimeField()
    # The leader's last tick, written with every renewal: /healthz and the ops dashboard read it.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.holder}"
