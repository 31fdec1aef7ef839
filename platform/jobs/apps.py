from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        # Django's place for connecting signals: every process that sets Django up (web,
        # worker, beat) reports task outcomes, stamps publishes and honours paused queues, and
        # records each job's retries in its result row.
        from jobs import result_backend, task_observability  # noqa: F401
