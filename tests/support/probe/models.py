"""Counted rows: every execution of a probe task, and every effect it did."""

from django.db import models


class ProbeExecution(models.Model):
    marker = models.CharField(max_length=100, db_index=True)
    job_id = models.CharField(max_length=255)
    retries = models.IntegerField()
    pid = models.IntegerField(default=0)
    eta = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"{self.marker} run {self.retries} by {self.job_id}"


class ProbeEffect(models.Model):
    marker = models.CharField(max_length=100, db_index=True)
    job_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.marker} by {self.job_id}"
