"""The HTTP API other programs call: the jobs API (/api/v1/: tasks, jobs, report endpoints), its API
keys, and the provider webhooks (/webhooks/), all answering errors in one JSON shape."""

from django.apps import AppConfig


class HttpApiConfig(AppConfig):
    # Its label is its name. Until this release it was "trigger_api": its tables keep that name
    # (each model's db_table), and `manage.py migrate` moves the migration history and content
    # types recorded under the old label to this one first (http_api/legacy_label.py).
    name = "http_api"
    verbose_name = "HTTP API"

    def ready(self) -> None:
        # Here, not at the top: both import models, which Django loads only after the app registry.
        from http_api.services import purge_expired
        from jobs.retention import register_pruner

        # Expired Idempotency-Keys and accepted-job records go with the nightly prune-job-records.
        register_pruner(purge_expired)
