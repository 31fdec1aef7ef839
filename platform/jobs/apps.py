from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        # Django's place for connecting signals: every process that sets Django up (web,
        # worker, beat) records each job's retries in its result row. Task outcomes, publish
        # stamps and paused queues: jobs/operations/apps.py.
        from jobs import result_backend  # noqa: F401
