"""The platform's Celery app (`celery -A tasks ...`) and its task modules, one per domain."""

from tasks.app import app

__all__ = ("app",)
