"""The admin at the scale of real history (issue 16, point 6; jobs/operations/admin_scale.py): every
changelist ops staff open (default page, search by id, task-name prefix search, each filter, a deep page)
runs only queries an index serves, never a Seq Scan on a big table, and never a count(*) over one.

100,000 task results and 50,000 rows in each other table, generated in SQL and ANALYZEd, so the
planner, left free to choose (no enable_seqscan tricks), sees a realistic table: the queries the
test client's requests ran are each EXPLAINed. PostgreSQL only (CI always runs it)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.support import large_history

TASK_RESULTS = 100_000
OTHERS = 50_000
BIG_TABLES = large_history.TABLES

A_TASK_ID = large_history.generated_id("t", 4242)


@pytest.fixture(scope="module")
def history(django_db_setup, django_db_blocker):
    if connection.vendor != "postgresql":
        pytest.fail("the admin's query plans are PostgreSQL's: run with DATABASE_URL=postgres://...")
    with django_db_blocker.unblock():
        large_history.fill(task_results=TASK_RESULTS, others=OTHERS)
        yield
        large_history.empty()


RESULTS = "/admin/django_celery_results/taskresult/"
PAGES = {page: f"/admin/{path}" for page, path in large_history.admin_pages().items()}


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


@pytest.mark.django_db
def test_an_empty_search_result_is_counted_without_asking_the_planner():
    # A term no searched column can hold (a task name, when only a UUID column is searched) makes
    # the queryset .none(): nothing to EXPLAIN, zero rows.
    from jobs.models import OutboxMessage
    from jobs.operations.admin_scale import EstimatedCountPaginator

    paginator = EstimatedCountPaginator(OutboxMessage.objects.none(), 100)
    assert paginator.count == 0
    assert list(paginator.page(1).object_list) == []
