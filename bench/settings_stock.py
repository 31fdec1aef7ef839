"""Celery's defaults for the tuned-vs-stock benchmark: the bench settings with every CELERY_*
choice the platform makes put back to Celery's own default (results stay in django-db)."""

from bench.settings import *  # noqa: F403

CELERY_RESULT_BACKEND = "django-db"
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_REJECT_ON_WORKER_LOST = None
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
# Unset: Celery's Django fixup closes the database connection before and after every task.
CELERY_DB_REUSE_MAX = None
CELERY_TASK_TRACK_STARTED = False
CELERY_RESULT_EXTENDED = False
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TASK_SEND_SENT_EVENT = False
CELERY_WORKER_MAX_TASKS_PER_CHILD = None
CELERY_TASK_SOFT_TIME_LIMIT = None
CELERY_TASK_TIME_LIMIT = None
CELERY_BROKER_TRANSPORT_OPTIONS = {}
