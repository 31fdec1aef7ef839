"""Every task the platform registers, by name: the one place a task name is written.

The task modules declare themselves with these (`@platform_task(name=TaskName.FETCH_VEHICLE_HISTORY)`);
domain code that enqueues a task it cannot import (domain apps sit below tasks/), the default
schedules (beat_schedules/defaults.py) and the trigger API name it through this catalog too. The
values are the registered names, part of the contract (docs/contract.md section 4 lists the public
ones): renaming a member is free, changing a value breaks every caller outside the code. A test
(tests/jobs/test_task_names.py) checks the catalog against the registered tasks, both ways.
"""

from __future__ import annotations

from enum import StrEnum


class TaskName(StrEnum):
    # tasks/fx.py
    UPDATE_EXCHANGE_RATES = "tasks.fx.update_exchange_rates"
    # tasks/payments.py
    PROCESS_PENDING_PAYMENTS = "tasks.payments.process_pending_payments"
    PROCESS_INVOICE_PAYMENT = "tasks.payments.process_invoice_payment"  # internal: one invoice's step
    SEND_PAYMENT_REMINDERS = "tasks.payments.send_payment_reminders"
    APPLY_STRIPE_EVENT = "tasks.payments.apply_stripe_event"  # internal: from the Stripe webhook
    # tasks/deals.py
    CHECK_STALLED_DEALS = "tasks.deals.check_stalled_deals"
    SEND_LEAD_FOLLOW_UP = "tasks.deals.send_lead_follow_up"
    SEND_DEAL_FOLLOW_UP = "tasks.deals.send_deal_follow_up"
    # tasks/shipments.py
    SEND_SHIPMENT_UPDATES = "tasks.shipments.send_shipment_updates"
    SEND_SHIPMENT_NOTIFICATION = "tasks.shipments.send_shipment_notification"
    CHECK_DELAYED_SHIPMENTS = "tasks.shipments.check_delayed_shipments"
    # tasks/commissions.py
    PROCESS_PENDING_COMMISSIONS = "tasks.commissions.process_pending_commissions"
    # tasks/maintenance.py
    CLEANUP_OLD_AUDIT_LOGS = "tasks.maintenance.cleanup_old_audit_logs"
    RELAY_OUTBOX = "tasks.maintenance.relay_outbox"  # internal
    PRUNE_JOB_RECORDS = "tasks.maintenance.prune_job_records"  # internal
    NOOP = "tasks.maintenance.noop"  # internal: proves a worker end to end
    SAMPLE_QUEUE_DEPTHS = "tasks.maintenance.sample_queue_depths"  # internal: ops dashboard history
    # tasks/notifications.py
    SEND_WHATSAPP_MESSAGE = "tasks.notifications.send_whatsapp_message"
    SEND_WHATSAPP_TEMPLATE = "tasks.notifications.send_whatsapp_template"
    SEND_BULK_WHATSAPP_NOTIFICATIONS = "tasks.notifications.send_bulk_whatsapp_notifications"
    SEND_BULK_WHATSAPP_CHUNK = "tasks.notifications.send_bulk_whatsapp_chunk"  # internal
    # tasks/reports.py
    FETCH_VEHICLE_HISTORY = "tasks.reports.fetch_vehicle_history"
    REFRESH_DEALER_PERFORMANCE = "tasks.reports.refresh_dealer_performance"  # internal
    REFRESH_ANALYTICS_DASHBOARD = "tasks.reports.refresh_analytics_dashboard"  # internal
    # Celery's own, scheduled by us (beat_schedules/defaults.py)
    CELERY_BACKEND_CLEANUP = "celery.backend_cleanup"
