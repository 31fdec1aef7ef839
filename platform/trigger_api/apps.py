from django.apps import AppConfig


class TriggerApiConfig(AppConfig):
    name = "trigger_api"
    verbose_name = "Trigger API"

    def ready(self) -> None:
        # Workers record each job's retry count in its result row (signals.py).
        from trigger_api import signals  # noqa: F401
