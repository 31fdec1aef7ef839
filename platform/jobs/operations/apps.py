from django.apps import AppConfig


class OperationsConfig(AppConfig):
    # How ops staff see the job machinery (admin pages, dashboard, chart, queue history and
    # operations, health, metrics): an app of its own, so Django finds its admin, templates and
    # commands while the runtime (the rest of jobs/) never imports it (pyproject.toml).
    name = "jobs.operations"
    label = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        # Django's place for connecting signals: every process that sets Django up (web,
        # worker, beat) reports task outcomes, stamps publishes and honours paused queues.
        from jobs.operations import task_observability  # noqa: F401
