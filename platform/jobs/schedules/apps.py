from django.apps import AppConfig


class SchedulesConfig(AppConfig):
    # Part of the job machinery; the label keeps its tables and migrations where they were.
    name = "jobs.schedules"
    label = "schedules"
    verbose_name = "Schedules"
