"""The platform's Celery application: configured from Django settings (CELERY_*), with the
platform's queues and routes, message builder and poison-aware consumer.

`celery -A tasks ...` finds it through tasks/app.py. Signal handlers every process needs (task
outcomes, publish stamps, paused queues) are connected by the jobs app (jobs/apps.py).
"""

from logging.config import dictConfig

from celery import Celery, Task, signals
from celery.exceptions import NotRegistered
from celery.utils.functional import maybe_list
from django.conf import settings
from django.db import close_old_connections

from jobs import rate_budget
from jobs.brokers import current_broker
from jobs.queues import QUEUE_NAMES, TASK_ROUTES, Queue

# Every task module of the platform, imported by every worker (strings: the machinery never
# imports a domain task module).
TASK_MODULES = [
    "tasks.fx",
    "tasks.payments",
    "tasks.deals",
    "tasks.shipments",
    "tasks.commissions",
    "tasks.maintenance",
    "tasks.notifications",
    "tasks.reports",
]


# The longest one publish may wait on the broker (a RabbitMQ node under a memory or disk alarm
# takes a message and never confirms it); callers that must answer sooner pass their own.
PUBLISH_TIMEOUT_SECONDS = 10.0


class PlatformCelery(Celery):
    def send_task(self, name, args=None, kwargs=None, countdown=None, eta=None, **options):
        # Every publish passes here (delay, apply_async, retry, send_task, beat, the outbox).
        broker = current_broker()
        for option, value in broker.publish_options(PUBLISH_TIMEOUT_SECONDS).items():
            options.setdefault(option, value)
        if countdown or eta:
            # The broker says what delay it can hold (native delayed delivery: whole seconds).
            countdown, eta = broker.delay_for_publish(countdown, eta, self.now())
        return super().send_task(name, args, kwargs, countdown=countdown, eta=eta, **options)


# MaskingAMQP: phone numbers masked in every message's argument reprs (Flower, results).
app = PlatformCelery("platform", include=TASK_MODULES, amqp="jobs.task_messages:MaskingAMQP")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    # Declared for the broker in use: quorum queues on topic exchanges on RabbitMQ (jobs/brokers/).
    task_queues=current_broker().task_queues(QUEUE_NAMES),
    task_routes=TASK_ROUTES,
    task_default_queue=Queue.DEFAULT.value,
    # Undecodable and unknown messages become dead letters (jobs/poison.py).
    worker_consumer="jobs.poison:PoisonAwareConsumer",
)


def registered_task(name: str) -> Task:
    """The task registered as `name`, for whoever publishes by name (jobs/outbox.py, a replay).

    A process that never imported the task modules (a web process, a shell, a script) imports
    them here, once: the app's `include` and `imports`, as a worker does at start-up. A name no
    module registers raises celery.exceptions.NotRegistered."""
    if name not in app.tasks:
        for module in (*maybe_list(app.conf.imports or ()), *maybe_list(app.conf.include or ())):
            app.loader.import_task_module(module)
    return app.tasks[name]


def argument_model_of(task_name: str):
    """The argument model of the task registered as `task_name` (jobs/arguments.py); None for a
    task that has none (Celery's own) or that no module registers (any more)."""
    try:
        task = registered_task(task_name)
    except NotRegistered:
        return None
    return getattr(task, "arguments", None)


def queue_of_task(task_name: str) -> str:
    """The queue a job of `task_name` goes to: Celery's router on the app's routes (jobs/queues.py
    TASK_ROUTES, else the default queue), the one answer for the API, the outbox and the ops pages."""
    return app.amqp.router.route({}, task_name)["queue"].name


# While Redis is away, shared rate limits divide themselves by the live worker processes.
rate_budget.register(app)


@signals.task_prerun.connect
def _drop_unusable_db_connections(**_kwargs) -> None:
    # CELERY_DB_REUSE_MAX keeps connections across tasks; this closes one that errored or
    # outlived CONN_MAX_AGE, and re-arms CONN_HEALTH_CHECKS so a connection the server
    # dropped is replaced before the task uses it, not discovered by the task's first query.
    close_old_connections()


@signals.setup_logging.connect
def _use_django_logging(**_kwargs) -> None:
    # Connecting this signal stops Celery from configuring logging itself: Django's LOGGING
    # (applied by django.setup()) stays in charge of the root logger.
    dictConfig(settings.LOGGING)
