"""The HTTP API other programs call: the jobs API (/api/v1/: tasks, jobs, report endpoints), its API
keys, and the provider webhooks (/webhooks/), all answering errors in one JSON shape."""

from django.apps import AppConfig


class HttpApiConfig(AppConfig):
    name = "http_api"
    # The label of its first name: its tables, migrations and admin URLs stay where they were.
    label = "trigger_api"
    verbose_name = "HTTP API"

    def ready(self) -> None:
        # Here, not at the top: both import models, which Django loads only after the app registry.
        from http_api.services import purge_expired
        from jobs.retention import register_pruner

        # Expired Idempotency-Keys and accepted-job records go with the nightly prune-job-records.
        register_pruner(purge_expired)
