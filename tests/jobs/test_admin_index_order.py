"""Issue 24: the changelists ops staff filter read their page in index order, whatever the number of
matching rows (jobs/operations/admin_scale.py read_in_index_order, jobs 0004 and audit 0003's indexes).

- EXPLAIN ANALYZE of each page's query on issue 24's data shape (large_history.fill_bad_week: four
  task names evenly spread, 2 % failures, an outbox outage mid-week; generated in SQL and VACUUM
  ANALYZEd, as autovacuum leaves a table, the planner left free to choose):
  no Sort over more rows than the page needs, and no more rows read from the table (kept or filtered
  out) than a few pages' worth, where a sort of every match would read thousands; jobs 0006's indexes
  for the outbox by state and open dead letters by task.
- The check itself: it fails every page when index scans are off (each must sort what it finds), and
  the sparse pages (2 % failed, the outbox's outage) without the index that gives their order.
The rows these pages show are checked in tests/jobs/test_admin_index_order_rows.py.
PostgreSQL only (CI always runs it). Never a timing: the bench (bench/admin_pages.py) shows those."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.support import large_history

TASK_RESULTS = 200_000
OTHERS = 60_000
PER_PAGE = 100
RESULTS = "/admin/django_celery_results/taskresult/"

# (the page's title, its path, how deep it is: the rows before it). Each matches hundreds or
# thousands of rows.
PAGES = [
    ("first page", RESULTS, 0),
    ("page 500", f"{RESULTS}?p=500", 49_900),
    ("failed", f"{RESULTS}?status=FAILURE", 0),
    ("name prefix", f"{RESULTS}?q=tasks.payments", 0),
    ("failed and name prefix", f"{RESULTS}?status=FAILURE&q=tasks.payments", 0),
    ("name prefix, page 3", f"{RESULTS}?q=tasks.payments&p=3", 200),
    ("prefix of every name", f"{RESULTS}?q=tasks.", 0),
    ("failed and prefix of every name", f"{RESULTS}?status=FAILURE&q=tasks.", 0),
    ("one task name", f"{RESULTS}?task_name=tasks.payments.process_invoice_payment", 0),
    (
        "one task name, failed",
        f"{RESULTS}?task_name=tasks.payments.process_invoice_payment&status=FAILURE",
        0,
    ),
    ("dead letters, one task", "/admin/jobs/deadletter/?task_name=tasks.deals.send_lead_follow_up", 0),
    ("dead letters, task prefix", "/admin/jobs/deadletter/?q=tasks.deals.", 0),
    ("dead letters, open, task prefix", "/admin/jobs/deadletter/?status__exact=open&q=tasks.", 0),
    ("outbox, failed", "/admin/jobs/outboxmessage/?outcome=FAILURE", 0),
    ("outbox, task prefix", "/admin/jobs/outboxmessage/?q=tasks.payments.", 0),
    ("outbox, failed, task prefix", "/admin/jobs/outboxmessage/?outcome=FAILURE&q=tasks.", 0),
    # The outage's rows, mid-week (large_history.fill's outbox_outage): none among the newest.
    ("outbox, not completed", "/admin/jobs/outboxmessage/?completed_at__isempty=1", 0),
    ("outbox, never published", "/admin/jobs/outboxmessage/?published_at__isempty=1", 0),
    ("outbox, not completed, page 3", "/admin/jobs/outboxmessage/?completed_at__isempty=1&p=3", 200),
    ("outbox, not completed, task prefix", "/admin/jobs/outboxmessage/?completed_at__isempty=1&q=tasks.", 0),
    ("audit log, one actor", "/admin/audit/auditlog/?q=alice", 0),
    ("audit log, actor prefix", "/admin/audit/auditlog/?q=task:tasks.", 0),
]


@pytest.fixture(scope="module")
def bad_week(django_db_setup, django_db_blocker):
    if connection.vendor != "postgresql":
        pytest.fail("the admin's query plans are PostgreSQL's: run with DATABASE_URL=postgres://...")
    with django_db_blocker.unblock():
        large_history.fill_bad_week(task_results=TASK_RESULTS, others=OTHERS)
        yield
        large_history.empty()


def _page_queries(queries) -> list[str]:
    """The queries that read the page's rows: ordered and cut (the merge, or the plain page), and the
    fetch of a merged page's rows by primary key; not the count, the planner's estimate or a
    filter's choices."""
    page = []
    for query in queries:
        sql = query["sql"]
        if not any(table in sql for table in large_history.TABLES):
            continue
        if (
            sql.startswith("EXPLAIN")
            or "WITH RECURSIVE" in sql
            or "COUNT(" in sql
            or sql.startswith("SELECT 1 FROM")  # a filter's choices: has the column a NULL?
        ):
            continue
        if "ORDER BY" in sql:
            page.append(sql)
    return page


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _analyze(sql: str) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


def _rows_in(node: dict) -> int:
    return int(node["Actual Rows"] * node["Actual Loops"])


def _rows_read(scan: dict) -> int:
    """The rows a scan read: those it returned and those its filter threw away (EXPLAIN gives both
    per loop)."""
    per_loop = (
        scan["Actual Rows"]
        + scan.get("Rows Removed by Filter", 0)
        + scan.get("Rows Removed by Index Recheck", 0)
    )
    return int(per_loop * scan["Actual Loops"])


def _not_in_index_order(path: str, client, *, before: int) -> list[str]:
    """GET the page; what in its plans shows it was not read in index order: a Seq Scan, a Sort fed
    more rows than the page needs, more rows read than a few pages' worth (EXPLAIN ANALYZE)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, response.status_code
    changelist = response.context["cl"]
    assert len(changelist.result_list) == PER_PAGE, "the data should fill the page"
    # The page's rows could come from a sort of every match: this shape makes them thousands.
    matching = changelist.queryset.order_by().count()
    assert matching >= 3 * (before + PER_PAGE), matching

    needed = before + PER_PAGE + 1
    sqls = _page_queries(queries.captured_queries)
    assert sqls, "no page query captured"
    problems = []
    for sql in sqls:
        plan = _analyze(sql)
        print(f"{path}: {sql}\n{json.dumps(plan, indent=1)[:6000]}\n")  # with -s: the measured plan
        scans = [n for n in _nodes(plan) if n.get("Relation Name") in large_history.TABLES]
        if any(n["Node Type"] == "Seq Scan" for n in scans):
            problems.append("a Seq Scan")
        for node in _nodes(plan):
            if node["Node Type"] == "Sort":  # (an Incremental Sort sorts rows of equal date, in order)
                fed = sum(_rows_in(child) for child in node.get("Plans", []))
                if fed > needed:
                    problems.append(f"a Sort over {fed} rows (of {matching} matching)")
        read = sum(_rows_read(n) for n in scans)
        # In index order a page reads the rows before it and its own, and those a filter on a column
        # the index does not hold skips (a quarter of the rows match at worst: about 4x). A sort of
        # every match reads all `matching`; a walk of the list's order past rare or bunched matches,
        # most of the table.
        if read > 6 * needed:
            problems.append(f"read {read} rows for a page (of {matching} matching)")
    return problems


@pytest.mark.django_db
@pytest.mark.parametrize(("title", "path", "before"), PAGES, ids=[p[0] for p in PAGES])
def test_the_page_is_read_in_index_order(bad_week, admin_client, title, path, before):
    assert _not_in_index_order(path, admin_client, before=before) == []


@pytest.mark.django_db
@pytest.mark.parametrize(("title", "path", "before"), PAGES, ids=[p[0] for p in PAGES])
def test_the_check_fails_a_page_that_sorts_every_match(bad_week, admin_client, title, path, before):
    # No index scans (a bitmap scan finds the matches in no order): each page must sort every match
    # it finds, and the check above must say so, or it proves nothing.
    with connection.cursor() as cursor:  # SET LOCAL: the test's transaction, rolled back after it
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_indexonlyscan = off")
    assert _not_in_index_order(path, admin_client, before=before), f"{title}: sorted every match unnoticed"


# Without the index that gives its order, each of these pages reads most of its table (or sorts
# every match) to find its newest rows: the matches are few (2 %, 0.5 %) or none are among the newest
# (the outbox's outage). Pages of a quarter of the rows spread evenly are not here: walking the list's
# order and skipping three rows in four is a fair plan for them, and the check rightly lets it pass.
WITHOUT_ITS_INDEX = [
    ("failed", f"{RESULTS}?status=FAILURE", ["taskresult_status_done_idx"]),
    (
        "failed and name prefix",
        f"{RESULTS}?status=FAILURE&q=tasks.payments",
        ["taskresult_name_status_done_idx", "taskresult_status_done_idx"],
    ),
    ("outbox, not completed", "/admin/jobs/outboxmessage/?completed_at__isempty=1", ["outbox_open_id_idx"]),
    (
        "outbox, never published",
        "/admin/jobs/outboxmessage/?published_at__isempty=1",
        ["outbox_unpublished_id_idx"],
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("title", "path", "indexes"), WITHOUT_ITS_INDEX, ids=[p[0] for p in WITHOUT_ITS_INDEX]
)
def test_the_check_fails_a_page_without_its_index(bad_week, admin_client, title, path, indexes):
    with connection.cursor() as cursor:  # in the test's transaction: rolled back after it
        for index in indexes:
            cursor.execute(f'DROP INDEX "{index}"')
    problems = _not_in_index_order(path, admin_client, before=0)
    assert problems, f"{title}: no Sort over every match and no long read, without {indexes}"


@pytest.mark.django_db
def test_a_name_prefix_page_is_a_merge_of_each_names_index(bad_week, admin_client):
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(f"{RESULTS}?status=FAILURE&q=tasks.")
    merge = next(sql for sql in _page_queries(queries.captured_queries) if "UNION ALL" in sql)
    plan = _analyze(merge)
    types = [n["Node Type"] for n in _nodes(plan)]
    assert "Merge Append" in types, types
    indexes = {n.get("Index Name") for n in _nodes(plan)}
    assert "taskresult_name_status_done_idx" in indexes, indexes


@pytest.mark.django_db
def test_the_failed_filter_reads_the_status_index_backward(bad_week, admin_client):
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(f"{RESULTS}?status=FAILURE")
    (sql,) = _page_queries(queries.captured_queries)
    plan = _analyze(sql)
    scans = [n for n in _nodes(plan) if n.get("Index Name") == "taskresult_status_done_idx"]
    assert scans and scans[0]["Scan Direction"] == "Backward", json.dumps(plan, indent=1)
    assert _rows_in(scans[0]) == PER_PAGE


@pytest.mark.django_db
def test_the_outbox_state_indexes_hold_only_open_rows():
    # jobs 0006 (create_index_concurrently's condition): partial, so a completed (or published) row
    # never enters them, and they stay the size of the backlog.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN (%s, %s)",
            ["outbox_open_id_idx", "outbox_unpublished_id_idx"],
        )
        definitions = dict(cursor.fetchall())
    assert definitions["outbox_open_id_idx"].endswith("(id) WHERE (completed_at IS NULL)")
    assert definitions["outbox_unpublished_id_idx"].endswith("(id) WHERE (published_at IS NULL)")
