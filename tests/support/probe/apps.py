from django.apps import AppConfig


class ProbeConfig(AppConfig):
    """A test-only app: tasks whose executions and effects the tests can count."""

    name = "tests.support.probe"
    label = "probe"
