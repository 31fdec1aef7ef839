"""The admin at the scale of real history (issue 16, point 6; jobs/admin_scale.py): every changelist
ops staff open (default page, search by id, task-name prefix search, each filter, a deep page)
runs only queries an index serves, never a Seq Scan on a big table, and never a count(*) over one.

100,000 task results and 50,000 rows in each other table, generated in SQL and ANALYZEd, so the
planner, left free to choose (no enable_seqscan tricks), sees a realistic table: the queries the
test client's requests ran are each EXPLAINed. PostgreSQL only (CI always runs it)."""

from __future__ import annotations

import hashlib
import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.support import large_history

TASK_RESULTS = 100_000
OTHERS = 50_000
BIG_TABLES = large_history.TABLES


def _generated_id(prefix: str, i: int) -> str:
    """The id large_history gave row i: md5(prefix || i) as a UUID."""
    return str(uuid.UUID(hashlib.md5(f"{prefix}{i}".encode()).hexdigest()))


A_TASK_ID = _generated_id("t", 4242)


@pytest.fixture(scope="module")
def history(django_db_setup, django_db_blocker):
    if connection.vendor != "postgresql":
        pytest.fail("the admin's query plans are PostgreSQL's: run with DATABASE_URL=postgres://...")
    with django_db_blocker.unblock():
        large_history.fill(task_results=TASK_RESULTS, others=OTHERS)
        yield
        large_history.empty()


RESULTS = "/admin/django_celery_results/taskresult/"
PAGES = {
    "task results": RESULTS,
    "task results, search by id": f"{RESULTS}?q={A_TASK_ID}",
    "task results, task-name prefix": f"{RESULTS}?q=tasks.payments.",
    "task results, page 500": f"{RESULTS}?p=500",
    "task results, status SUCCESS": f"{RESULTS}?status=SUCCESS",
    "task results, status FAILURE": f"{RESULTS}?status=FAILURE",
    "task results, task name": f"{RESULTS}?task_name=tasks.fx.refresh_exchange_rates",
    "task results, periodic task": f"{RESULTS}?periodic_task_name=relay-outbox",
    "task results, worker": f"{RESULTS}?worker=celery%40worker1",
    "task results, done today": f"{RESULTS}?date_done__gte=2000-01-01",
    "task results, a page of a filter": f"{RESULTS}?status=SUCCESS&p=50",
    "group results": "/admin/django_celery_results/groupresult/",
    "group results, search by id": "/admin/django_celery_results/groupresult/?q=" + _generated_id("g", 4242),
    "group results, page 300": "/admin/django_celery_results/groupresult/?p=300",
    "dead letters": "/admin/jobs/deadletter/",
    "dead letters, search by id": "/admin/jobs/deadletter/?q=" + _generated_id("d", 4242),
    "dead letters, task-name prefix": "/admin/jobs/deadletter/?q=tasks.deals.",
    "dead letters, open": "/admin/jobs/deadletter/?status__exact=open",
    "dead letters, task name": "/admin/jobs/deadletter/?task_name=tasks.fx.refresh_exchange_rates",
    "dead letters, queue": "/admin/jobs/deadletter/?queue=payments",
    "dead letters, exception": "/admin/jobs/deadletter/?exception_type=builtins.KeyError",
    "dead letters, page 300": "/admin/jobs/deadletter/?p=300",
    "effects": "/admin/jobs/effect/",
    "effects, search by job id": f"/admin/jobs/effect/?q={A_TASK_ID}",
    "effects, key prefix": "/admin/jobs/effect/?q=whatsapp:message:4242",
    "effects, page 300": "/admin/jobs/effect/?p=300",
    "outbox": "/admin/jobs/outboxmessage/",
    "outbox, search by job id": "/admin/jobs/outboxmessage/?q=" + _generated_id("o", 4242),
    "outbox, task-name prefix": "/admin/jobs/outboxmessage/?q=tasks.payments.",
    "outbox, outcome FAILURE": "/admin/jobs/outboxmessage/?outcome=FAILURE",
    "outbox, task name": "/admin/jobs/outboxmessage/?task_name=tasks.fx.refresh_exchange_rates",
    "outbox, not completed": "/admin/jobs/outboxmessage/?completed_at__isempty=1",
    "outbox, never published": "/admin/jobs/outboxmessage/?published_at__isempty=1",
    "outbox, page 300": "/admin/jobs/outboxmessage/?p=300",
    "audit log": "/admin/audit/auditlog/",
    "audit log, search by object id": "/admin/audit/auditlog/?q=4242",
    "audit log, actor prefix": "/admin/audit/auditlog/?q=alice",
    "audit log, object type": "/admin/audit/auditlog/?object_type=billing.invoice",
    "audit log, action": "/admin/audit/auditlog/?action=whatsapp:sent",
    "audit log, page 300": "/admin/audit/auditlog/?p=300",
}


def _plans(queries) -> list[tuple[str, str]]:
    """(sql, plan) of each captured query that reads a big table (the paginator's EXPLAINs aside)."""
    plans = []
    with connection.cursor() as cursor:
        for query in queries:
            sql = query["sql"]
            if sql.startswith("EXPLAIN") or not any(table in sql for table in BIG_TABLES):
                continue
            cursor.execute(f"EXPLAIN {sql}")
            plans.append((sql, "\n".join(row[0] for row in cursor.fetchall())))
    return plans


@pytest.mark.django_db
@pytest.mark.parametrize("page", list(PAGES))
def test_each_admin_page_reads_big_tables_only_through_an_index(history, admin_client, page):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(PAGES[page])
    assert response.status_code == 200, response.status_code
    plans = _plans(queries.captured_queries)
    assert plans, "the page read none of the big tables"
    for sql, plan in plans:
        print(f"{sql}\n{plan}\n")  # shown with -s: the measured plans
        scanned = [table for table in BIG_TABLES if f"Seq Scan on {table}" in plan]
        assert not scanned, f"{page}: a Seq Scan on {scanned}:\n{sql}\n{plan}"
        # A count is only ever of a result the planner expects to be small, and bounded by a LIMIT.
        if re.search(r"\bCOUNT\(", sql):
            assert "LIMIT" in sql, f"{page}: an unbounded count:\n{sql}"


@pytest.mark.django_db
def test_the_task_results_page_counts_nothing_and_shows_an_estimate(history, admin_client):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(RESULTS)
    counts = [q["sql"] for q in queries.captured_queries if re.search(r"\bCOUNT\(", q["sql"])]
    assert counts == []
    changelist = response.context["cl"]
    assert changelist.paginator.estimated
    # The planner's estimate after ANALYZE: the table's size, near enough.
    assert abs(changelist.result_count - TASK_RESULTS) < TASK_RESULTS * 0.1
    assert "about" in response.content.decode()


@pytest.mark.django_db
def test_searches_find_by_exact_id_and_by_task_name_prefix(history, admin_client):
    by_id = admin_client.get(f"{RESULTS}?q={A_TASK_ID}").context["cl"]
    assert [r.task_id for r in by_id.result_list] == [A_TASK_ID]
    by_prefix = admin_client.get(f"{RESULTS}?q=tasks.payments.").context["cl"]
    names = {r.task_name for r in by_prefix.result_list}
    assert names == {"tasks.payments.process_invoice_payment", "tasks.payments.send_payment_reminder"}
    # A term that is neither: nothing, rather than a scan of every column.
    assert list(admin_client.get(f"{RESULTS}?q=payments").context["cl"].result_list) == []


@pytest.mark.django_db
def test_filter_choices_are_every_value_of_the_column(history, admin_client):
    changelist = admin_client.get(RESULTS).context["cl"]
    by_title = {str(f.title).lower(): f for f in changelist.filter_specs}
    print(list(by_title))
    assert list(by_title["task name"].lookup_choices) == sorted(n for n, _ in large_history.TASK_NAMES)
    assert list(by_title["task state"].lookup_choices) == sorted(s for s, _ in large_history.STATUSES)
    assert list(by_title["worker"].lookup_choices) == [f"celery@worker{i}" for i in range(4)]
    assert list(by_title["periodic task name"].lookup_choices) == ["relay-outbox", None]


@pytest.mark.django_db
def test_a_deep_page_of_an_estimated_count_is_served(history, admin_client):
    response = admin_client.get(f"{RESULTS}?p=500")
    changelist = response.context["cl"]
    assert len(changelist.result_list) == 100
    assert changelist.page_num == 500
