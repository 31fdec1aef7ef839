from django.apps import AppConfig


class TriggerApiConfig(AppConfig):
    name = "trigger_api"
    verbose_name = "Trigger API"
