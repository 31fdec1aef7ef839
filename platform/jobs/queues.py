"""The platform's queues, in one place, and which tasks go where.

Each queue is consumed by a worker of its own in production (ops/systemd/platform-worker@.service,
instance = queue name); `celery -A tasks worker` with no -Q consumes all of them.
"""

from enum import StrEnum


class Queue(StrEnum):
    DEFAULT = "default"  # short jobs: fx, deals, shipments, commissions
    NOTIFICATIONS = "notifications"  # WhatsApp sends; bounded by Twilio's rate limit
    PAYMENTS = "payments"  # Stripe calls and webhook processing; money, kept apart
    REPORTS = "reports"  # paid vehicle-history calls and dashboard aggregates; slow
    MAINTENANCE = "maintenance"  # audit-log retention, result pruning, outbox relay


# How each is declared (a Redis list, or a RabbitMQ quorum queue) is the broker's business:
# jobs/brokers/, through jobs/celery_app.py.
QUEUE_NAMES = [queue.value for queue in Queue]

# Glob routes by module: a task's queue follows from where it lives.
TASK_ROUTES = {
    "tasks.notifications.*": {"queue": Queue.NOTIFICATIONS.value},
    "tasks.payments.*": {"queue": Queue.PAYMENTS.value},
    "tasks.reports.*": {"queue": Queue.REPORTS.value},
    "tasks.maintenance.*": {"queue": Queue.MAINTENANCE.value},
    "celery.backend_cleanup": {"queue": Queue.MAINTENANCE.value},
}
