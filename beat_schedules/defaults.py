"""The default schedules, as plain declarations: what runs, and when, in TIME_ZONE.

This is the table of docs/contract.md section 5 plus result pruning. `python manage.py sync_schedules`
copies it into django-celery-beat's tables (platform/jobs/schedules/sync.py, which finds it
through settings.SCHEDULE_DEFAULTS), where operators edit it in admin; an edit made
there wins over this file until someone runs `sync_schedules --reset NAME`.
"""

from __future__ import annotations

from django.conf import settings

from jobs.schedules.declarations import Cron, DefaultSchedule
from jobs.task_names import TaskName

# The dashboards' refresh periods, in minutes (settings.DASHBOARD_REFRESH_MINUTES, their one home).
_DEALER_PERFORMANCE_MINUTES = settings.DASHBOARD_REFRESH_MINUTES["dealer_performance"]
_ANALYTICS_MINUTES = settings.DASHBOARD_REFRESH_MINUTES["analytics_dashboard"]

DEFAULT_SCHEDULES: tuple[DefaultSchedule, ...] = (
    DefaultSchedule(
        name="update-exchange-rates-daily",
        task=TaskName.UPDATE_EXCHANGE_RATES,
        when=Cron(minute="30", hour="0"),
        description="Fetch CAD/USD/XAF exchange rates and refresh their cache.",
    ),
    DefaultSchedule(
        name="check-stalled-deals-daily",
        task=TaskName.CHECK_STALLED_DEALS,
        when=Cron(minute="0", hour="9"),
        description="Flag leads and deals with no activity past their threshold.",
    ),
    DefaultSchedule(
        name="send-shipment-updates",
        task=TaskName.SEND_SHIPMENT_UPDATES,
        when=Cron(minute="0", hour="*/6"),
        description="Notify buyers of shipment progress, every 6 hours on the hour.",
    ),
    DefaultSchedule(
        name="process-pending-commissions",
        task=TaskName.PROCESS_PENDING_COMMISSIONS,
        when=Cron(minute="0", hour="10", day_of_week="1"),
        description="Compute and settle pending broker commissions, Mondays.",
    ),
    DefaultSchedule(
        name="cleanup-old-audit-logs",
        task=TaskName.CLEANUP_OLD_AUDIT_LOGS,
        when=Cron(minute="0", hour="2", day_of_month="1"),
        description="Delete audit-log rows past retention, on the 1st of the month.",
    ),
    DefaultSchedule(
        name="send-payment-reminders-daily",
        task=TaskName.SEND_PAYMENT_REMINDERS,
        when=Cron(minute="0", hour="10"),
        description="Remind buyers of overdue invoices (at most once per invoice per day).",
    ),
    DefaultSchedule(
        name="check-delayed-shipments",
        task=TaskName.CHECK_DELAYED_SHIPMENTS,
        when=Cron(minute="0", hour="8"),
        description="Alert on shipments past their ETA.",
    ),
    DefaultSchedule(
        name="process-pending-payments",
        task=TaskName.PROCESS_PENDING_PAYMENTS,
        when=Cron(minute="*/15"),
        description="Move pending invoices forward through Stripe, every 15 minutes.",
        # The next run is 15 minutes away: a run still queued by then is redundant.
        expire_seconds=14 * 60,
    ),
    DefaultSchedule(
        # The outbox relay (platform/jobs/outbox.py): publishes durable jobs a crash kept from
        # being published and republishes those a broker lost. Idle, a sweep is one query.
        name="relay-outbox",
        task=TaskName.RELAY_OUTBOX,
        when=Cron(minute="*"),
        description="Publish outbox jobs never published; republish those the broker lost.",
        expire_seconds=50,
    ),
    DefaultSchedule(
        # The ops dashboard's "an hour ago" column (platform/jobs/operations/queue_history.py): one small
        # sample of every queue's depth in REDIS_URL; a late one is worth nothing.
        name="sample-queue-depths",
        task=TaskName.SAMPLE_QUEUE_DEPTHS,
        when=Cron(minute="*"),
        description="Record every queue's depth, for the ops dashboard's hour-ago comparison.",
        expire_seconds=50,
    ),
    DefaultSchedule(
        # Dashboards are computed here and served from their snapshots (reports/market_dashboards.py);
        # a run still queued when the next is due is redundant.
        name="refresh-dealer-performance",
        task=TaskName.REFRESH_DEALER_PERFORMANCE,
        when=Cron(minute=f"*/{_DEALER_PERFORMANCE_MINUTES}"),
        description=(
            f"Recompute every dealer's performance snapshot, every {_DEALER_PERFORMANCE_MINUTES} minutes."
        ),
        expire_seconds=(_DEALER_PERFORMANCE_MINUTES - 1) * 60,
    ),
    DefaultSchedule(
        name="refresh-analytics-dashboard",
        task=TaskName.REFRESH_ANALYTICS_DASHBOARD,
        when=Cron(minute=f"*/{_ANALYTICS_MINUTES}"),
        description=f"Recompute the marketplace analytics snapshot, every {_ANALYTICS_MINUTES} minutes.",
        expire_seconds=(_ANALYTICS_MINUTES - 1) * 60,
    ),
    DefaultSchedule(
        name="prune-job-records",
        task=TaskName.PRUNE_JOB_RECORDS,
        when=Cron(minute="30", hour="3"),
        description="Delete old effect-ledger rows, completed outbox messages, expired Idempotency-Keys.",
        expire_seconds=12 * 3600,
    ),
    DefaultSchedule(
        # Celery's own result pruning (deletes django-celery-results rows past
        # CELERY_RESULT_EXPIRES). Declared here so it is visible and editable like the rest;
        # platform/jobs/schedules/scheduler.py stops beat from adding an undeclared copy.
        name="celery.backend_cleanup",
        task=TaskName.CELERY_BACKEND_CLEANUP,
        when=Cron(minute="0", hour="4"),
        description="Delete task results older than CELERY_RESULT_EXPIRES.",
        expire_seconds=12 * 3600,
    ),
)

DEFAULTS_BY_NAME: dict[str, DefaultSchedule] = {s.name: s for s in DEFAULT_SCHEDULES}
