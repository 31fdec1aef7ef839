from django.apps import AppConfig


class TriggerApiConfig(AppConfig):
    name = "trigger_api"
    verbose_name = "Trigger API"

    def ready(self) -> None:
        # Here, not at the top: both import models, which Django loads only after the app registry.
        from jobs.retention import register_pruner
        from trigger_api.services import purge_expired

        # Expired Idempotency-Keys and accepted-job records go with the nightly prune-job-records.
        register_pruner(purge_expired)
