"""Queues paused from the ops dashboard: in PostgreSQL, so a Redis outage forgets no pause."""

from django.db import models


class PausedQueue(models.Model):
    """One paused queue, and the workers to give it back to when it is resumed.

    Written by jobs/operations/queue_ops.py (pause, resume, a worker starting while its queue is
    paused); read by workers at start-up, /metrics and the ops dashboard. Redis is not involved:
    the reads are a handful of rows by primary key.
    """

    name = models.CharField(max_length=100, primary_key=True)
    paused_at = models.DateTimeField(auto_now_add=True)
    # Names of the workers that were consuming it when it was paused, or skipped it since.
    workers = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return self.name
