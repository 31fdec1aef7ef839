"""A week of job history generated in SQL (generate_series), for the admin's index tests
(tests/jobs/test_admin_scale.py) and `make bench`'s admin pages (bench/admin_pages.py), and the
pages themselves (admin_pages): task
results, group results, dead letters, effects, outbox messages and audit log rows with a realistic
spread (a few task names carry most jobs, 95 % succeed, rows written in time order), then VACUUM
ANALYZE.
PostgreSQL only."""

from __future__ import annotations

import hashlib
import uuid

from django.db import connection

# (task name, share of jobs): the notification sends dominate, as in production.
TASK_NAMES = (
    ("tasks.notifications.send_whatsapp_message", 40),
    ("tasks.maintenance.relay_outbox", 15),
    ("tasks.deals.send_lead_follow_up", 10),
    ("tasks.deals.send_deal_follow_up", 8),
    ("tasks.shipments.notify_shipment_update", 8),
    ("tasks.payments.process_invoice_payment", 6),
    ("tasks.payments.send_payment_reminder", 5),
    ("tasks.reports.fetch_vehicle_history", 3),
    ("tasks.fx.refresh_exchange_rates", 2),
    ("tasks.commissions.compute_weekly_commissions", 1),
    ("tasks.deals.check_stalled_deals", 1),
    ("tasks.maintenance.cleanup_old_audit_logs", 1),
)
# (status, share): a healthy week.
STATUSES = (("SUCCESS", 95), ("FAILURE", 3), ("RETRY", 1), ("STARTED", 1))
# Issue 24's shape, a bad week: four task names evenly spread and 2 % failures, so the failed filter
# and a name prefix each match a large share of the rows (a quarter for tasks.payments).
BAD_WEEK_TASK_NAMES = (
    ("tasks.notifications.send_whatsapp_message", 25),
    ("tasks.payments.process_invoice_payment", 25),
    ("tasks.deals.send_lead_follow_up", 25),
    ("tasks.shipments.notify_shipment_update", 25),
)
BAD_WEEK_STATUSES = (("SUCCESS", 98), ("FAILURE", 2))
# And in the outbox, an outage mid-week (fill's outbox_outage): the broker was down for a tenth of
# the week (those rows never published), then the workers stuck for the next tenth (published, never
# completed), so "not completed" matches a fifth of the rows, none of them among the newest.
WEEK_SECONDS = 7 * 24 * 3600

TABLES = (
    "django_celery_results_taskresult",
    "django_celery_results_groupresult",
    "jobs_deadletter",
    "jobs_effect",
    "jobs_outboxmessage",
    "audit_auditlog",
)


def _weighted(pairs) -> str:
    """A SQL array with each value repeated by its share: `arr[1 + i % 100]` picks by weight."""
    values = [value for value, share in pairs for _ in range(share)]
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"


def _pick(pairs, salt: int) -> str:
    """A value by weight, scattered over i (not in runs of equal rows); the i / total term shifts
    the pick from one block of `total` rows to the next, so two picks with different salts are
    independent (every task name has its share of every status)."""
    total = sum(share for _, share in pairs)
    return f"({_weighted(pairs)})[1 + ((i * {salt} + i / {total}) % {total})]"


def _at(rows: int) -> str:
    """The row's time: rows spread evenly over the last week, in the order they are written."""
    return f"now() - make_interval(secs => {WEEK_SECONDS} * ({rows} - i)::float8 / {rows})"


def fill(
    *,
    task_results: int,
    others: int,
    task_names=TASK_NAMES,
    statuses=STATUSES,
    tables=TABLES,
    outbox_outage: bool = False,
) -> None:
    """Insert `task_results` task results and `others` rows in each other table of `tables`, then
    VACUUM ANALYZE. `task_names` and `statuses`: (value, share) pairs (BAD_WEEK_* for issue 24's shape; the
    task names are the dead letters', the outbox's and the audit log's too). `outbox_outage`: the
    outbox rows of the week's sixth tenth never published, of its seventh never completed (see
    BAD_WEEK_STATUSES); otherwise one in 1,000 is not completed."""
    task = _pick(task_names, 7919)
    if outbox_outage:
        pending = f"(i > {others} * 5 / 10 AND i <= {others} * 6 / 10)"
        stuck = f"(i > {others} * 5 / 10 AND i <= {others} * 7 / 10)"
        outbox_published = f"CASE WHEN NOT {pending} THEN {_at(others)} END"
        outbox_completed = f"CASE WHEN NOT {stuck} THEN {_at(others)} END"
        outbox_outcome = f"CASE WHEN {stuck} THEN '' WHEN i % 50 = 0 THEN 'FAILURE' ELSE 'SUCCESS' END"
    else:
        outbox_published = _at(others)
        outbox_completed = f"CASE WHEN i % 1000 <> 0 THEN {_at(others)} END"
        outbox_outcome = "CASE WHEN i % 1000 = 0 THEN '' WHEN i % 100 = 0 THEN 'FAILURE' ELSE 'SUCCESS' END"
    statements = [
        f"""INSERT INTO django_celery_results_taskresult (task_id, periodic_task_name, task_name,
              task_args, task_kwargs, status, worker, content_type, content_encoding, result,
              date_created, date_started, date_done, traceback, meta)
            SELECT md5('t' || i)::uuid::text,
                   CASE WHEN i % 50 = 0 THEN 'relay-outbox' END,
                   {task}, '[]', '{{"to": "+1416555****"}}', {_pick(statuses, 104729)},
                   'celery@worker' || (i % 4), 'application/json', 'utf-8', 'null',
                   {_at(task_results)}, {_at(task_results)}, {_at(task_results)}, NULL,
                   '{{"children": [], "retries": 0}}'
            FROM generate_series(1::bigint, {task_results}) AS i""",  # noqa: S608 fixed table names and generated numbers only
        f"""INSERT INTO django_celery_results_groupresult (group_id, date_created, date_done,
              content_type, content_encoding, result)
            SELECT md5('g' || i)::uuid::text, {_at(others)}, {_at(others)}, 'application/json',
                   'utf-8', '[]'
            FROM generate_series(1::bigint, {others}) AS i""",  # noqa: S608 fixed table names and generated numbers only
        f"""INSERT INTO jobs_deadletter (task_id, task_name, queue, args, kwargs, exception_type,
              exception_message, traceback, attempts, first_failed_at, last_failed_at, status,
              replay_count, resolved_at, resolved_by)
            SELECT md5('d' || i)::uuid::text, {task}, (ARRAY['default', 'notifications',
                   'payments', 'reports', 'maintenance'])[1 + i % 5], '[]', '{{}}',
                   (ARRAY['integrations.errors.PermanentError', 'jobs.errors.InvalidArgument',
                   'jobs.errors.UnexpectedState', 'builtins.KeyError'])[1 + i % 4],
                   'failed', '', 1 + i % 6, {_at(others)}, {_at(others)},
                   CASE WHEN i % 10 = 0 THEN 'open' WHEN i % 10 < 8 THEN 'replayed' ELSE 'discarded' END,
                   i % 3, NULL, ''
            FROM generate_series(1::bigint, {others}) AS i""",  # noqa: S608 fixed table names and generated numbers only
        f"""INSERT INTO jobs_effect (job_id, key, created_at)
            SELECT md5('t' || i)::uuid::text, 'whatsapp:message:' || i, {_at(others)}
            FROM generate_series(1::bigint, {others}) AS i""",  # noqa: S608 fixed table names and generated numbers only
        f"""INSERT INTO jobs_outboxmessage (job_id, task_name, kwargs, queue, eta, created_at,
              published_at, publish_attempts, last_error, completed_at, outcome)
            SELECT md5('o' || i)::uuid, {task}, '{{}}', 'notifications', NULL, {_at(others)},
                   {outbox_published}, 1, '', {outbox_completed}, {outbox_outcome}
            FROM generate_series(1::bigint, {others}) AS i""",  # noqa: S608 fixed table names and generated numbers only
        f"""INSERT INTO audit_auditlog (actor, action, object_type, object_id, changes, created_at)
            SELECT CASE WHEN i % 5 = 0 THEN 'alice' ELSE 'task:' || {task} END,
                   (ARRAY['status:negotiating->agreed', 'status:agreed->invoiced',
                   'status:invoiced->paid', 'whatsapp:sent', 'schedule:changed'])[1 + i % 5],
                   (ARRAY['marketplace.deal', 'billing.invoice', 'logistics.shipment',
                   'messaging.whatsappmessage'])[1 + i % 4], (i % 200000)::text, '{{}}', {_at(others)}
            FROM generate_series(1::bigint, {others}) AS i""",  # noqa: S608 fixed table names and generated numbers only
    ]
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '256MB'")
        for table, statement in zip(TABLES, statements, strict=True):
            if table not in tables:
                continue
            # Indexes built once after the rows, not maintained row by row: several times faster
            # at 10 million rows. Constraints (primary and unique keys) stay.
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN"
                " (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
                [table, table],
            )
            indexes = cursor.fetchall()
            for name, _ in indexes:
                cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
            try:
                cursor.execute(statement)
            finally:
                for _, definition in indexes:
                    cursor.execute(definition)
            # VACUUM too, as autovacuum does to a table that takes inserts (PostgreSQL 13+): the
            # visibility map lets an index-only scan skip the heap, and the planner counts on it.
            cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute("RESET maintenance_work_mem")


def empty(tables=TABLES) -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE " + ", ".join(tables))


def generated_id(prefix: str, i: int) -> str:
    """The id fill() gave row i of a table: md5(prefix || i) as a UUID (t: task results, g: group
    results, d: dead letters, o: outbox messages)."""
    return str(uuid.UUID(hashlib.md5(f"{prefix}{i}".encode(), usedforsecurity=False).hexdigest()))


def admin_pages() -> dict[str, str]:
    """Every changelist ops staff open on these tables: default page, searches, each filter, a deep
    page; paths below the admin site's root."""
    return {
        "task results": "django_celery_results/taskresult/",
        "task results, search by id": "django_celery_results/taskresult/?q=" + generated_id("t", 4242),
        "task results, task-name prefix": "django_celery_results/taskresult/?q=tasks.payments.",
        "task results, page 500": "django_celery_results/taskresult/?p=500",
        "task results, status SUCCESS": "django_celery_results/taskresult/?status=SUCCESS",
        "task results, status FAILURE": "django_celery_results/taskresult/?status=FAILURE",
        "task results, task name": "django_celery_results/taskresult/?task_name="
        + "tasks.fx.refresh_exchange_rates",
        "task results, periodic task": "django_celery_results/taskresult/?periodic_task_name=relay-outbox",
        "task results, worker": "django_celery_results/taskresult/?worker=celery%40worker1",
        "task results, done today": "django_celery_results/taskresult/?date_done__gte="
        + "2000-01-01T00:00:00%2B00:00",
        "task results, a page of a filter": "django_celery_results/taskresult/?status=SUCCESS&p=50",
        "group results": "django_celery_results/groupresult/",
        "group results, search by id": "django_celery_results/groupresult/?q=" + generated_id("g", 4242),
        "group results, page 300": "django_celery_results/groupresult/?p=300",
        "dead letters": "jobs/deadletter/",
        "dead letters, search by id": "jobs/deadletter/?q=" + generated_id("d", 4242),
        "dead letters, task-name prefix": "jobs/deadletter/?q=tasks.deals.",
        "dead letters, open": "jobs/deadletter/?status__exact=open",
        "dead letters, task name": "jobs/deadletter/?task_name=tasks.fx.refresh_exchange_rates",
        "dead letters, queue": "jobs/deadletter/?queue=payments",
        "dead letters, exception": "jobs/deadletter/?exception_type=builtins.KeyError",
        "dead letters, page 300": "jobs/deadletter/?p=300",
        "effects": "jobs/effect/",
        "effects, search by job id": "jobs/effect/?q=" + generated_id("t", 4242),
        "effects, key prefix": "jobs/effect/?q=whatsapp:message:4242",
        "effects, page 300": "jobs/effect/?p=300",
        "outbox": "jobs/outboxmessage/",
        "outbox, search by job id": "jobs/outboxmessage/?q=" + generated_id("o", 4242),
        "outbox, task-name prefix": "jobs/outboxmessage/?q=tasks.payments.",
        "outbox, outcome FAILURE": "jobs/outboxmessage/?outcome=FAILURE",
        "outbox, task name": "jobs/outboxmessage/?task_name=tasks.fx.refresh_exchange_rates",
        "outbox, not completed": "jobs/outboxmessage/?completed_at__isempty=1",
        "outbox, never published": "jobs/outboxmessage/?published_at__isempty=1",
        "outbox, page 300": "jobs/outboxmessage/?p=300",
        "audit log": "audit/auditlog/",
        "audit log, search by object id": "audit/auditlog/?q=4242",
        "audit log, actor prefix": "audit/auditlog/?q=alice",
        "audit log, object type": "audit/auditlog/?object_type=billing.invoice",
        "audit log, action": "audit/auditlog/?action=whatsapp:sent",
        "audit log, page 300": "audit/auditlog/?p=300",
    }


def fill_bad_week(*, task_results: int, others: int, tables=TABLES) -> None:
    """fill() in issue 24's shape: BAD_WEEK_* task names and statuses, the outbox's outage."""
    fill(
        task_results=task_results,
        others=others,
        task_names=BAD_WEEK_TASK_NAMES,
        statuses=BAD_WEEK_STATUSES,
        tables=tables,
        outbox_outage=True,
    )


def bad_week_pages() -> dict[str, str]:
    """The pages of issue 24, on fill_bad_week's data: the filters and searches that match a large
    share of the rows, alone and combined, and the plain first and deep pages; paths below the admin
    site's root."""
    results = "django_celery_results/taskresult/"
    return {
        "task results, first page": results,
        "task results, page 500": results + "?p=500",
        "task results, status FAILURE (2 %)": results + "?status=FAILURE",
        "task results, name prefix tasks.payments (25 %)": results + "?q=tasks.payments",
        "task results, FAILURE + prefix tasks.payments (0.5 %)": results + "?status=FAILURE&q=tasks.payments",
        "task results, prefix tasks. (every name, 100 %)": results + "?q=tasks.",
        "task results, FAILURE + prefix tasks. (2 %)": results + "?status=FAILURE&q=tasks.",
        "task results, task name and FAILURE": results
        + "?task_name=tasks.payments.process_invoice_payment&status=FAILURE",
        "task results, page 5 of FAILURE + prefix tasks.": results + "?status=FAILURE&q=tasks.&p=5",
        "dead letters, one task (25 %)": "jobs/deadletter/?task_name=tasks.payments.process_invoice_payment",
        "dead letters, task prefix tasks.payments (25 %)": "jobs/deadletter/?q=tasks.payments",
        "dead letters, open + task prefix tasks. (10 %)": "jobs/deadletter/?status__exact=open&q=tasks.",
        "outbox, not completed (20 %, mid-week)": "jobs/outboxmessage/?completed_at__isempty=1",
        "outbox, never published (10 %, mid-week)": "jobs/outboxmessage/?published_at__isempty=1",
        "outbox, outcome FAILURE (1.6 %)": "jobs/outboxmessage/?outcome=FAILURE",
        "outbox, task prefix tasks.payments (25 %)": "jobs/outboxmessage/?q=tasks.payments",
        "audit log, actor alice (20 %)": "audit/auditlog/?q=alice",
        "audit log, actor prefix task:tasks.payments (20 %)": "audit/auditlog/?q=task:tasks.payments",
    }
