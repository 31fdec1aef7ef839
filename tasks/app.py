"""The Celery application: configured from Django settings (CELERY_*), queues from tasks/queues.py."""

import os
import sys
from pathlib import Path

from celery import Celery, signals

ROOT = Path(__file__).resolve().parent.parent
_platform_root = str(ROOT / "platform")
if _platform_root not in sys.path:
    # platform/ is the Django source root; see manage.py.
    sys.path.insert(0, _platform_root)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

from tasks.queues import TASK_QUEUES, TASK_ROUTES, Queue  # noqa: E402

# Every task module of the platform; a module listed here is imported by every worker.
TASK_MODULES = [
    "tasks.diagnostics",
    "tasks.maintenance",
    "tasks.fx",
    "tasks.payments",
    "tasks.deals",
    "tasks.shipments",
    "tasks.commissions",
    "tasks.notifications",
    "tasks.reports",
    "tasks.webhooks",
]

# MaskingAMQP: phone numbers masked in every message's argument reprs (Flower, results).
app = Celery("platform", include=TASK_MODULES, amqp="tasks.amqp:MaskingAMQP")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_queues=TASK_QUEUES,
    task_routes=TASK_ROUTES,
    task_default_queue=Queue.DEFAULT.value,
    # Undecodable and unknown messages become dead letters (tasks/poison.py).
    worker_consumer="tasks.poison:PoisonAwareConsumer",
)


# Signal handlers every process of the platform needs (platform/jobs/): task outcome metrics and
# log lines, publish timestamps, paused queues.
import jobs.task_observability  # noqa: E402,F401


@signals.task_prerun.connect
def _drop_unusable_db_connections(**_kwargs) -> None:
    # CELERY_DB_REUSE_MAX keeps connections across tasks; this closes one that errored or
    # outlived CONN_MAX_AGE, and re-arms CONN_HEALTH_CHECKS so a connection the server
    # dropped is replaced before the task uses it, not discovered by the task's first query.
    from django.db import close_old_connections

    close_old_connections()


@signals.setup_logging.connect
def _use_django_logging(**_kwargs) -> None:
    # Connecting this signal stops Celery from configuring logging itself: Django's LOGGING
    # (applied by django.setup()) stays in charge of the root logger.
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
