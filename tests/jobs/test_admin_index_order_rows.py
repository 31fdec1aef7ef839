"""Issue 24: the admin's filtered and searched lists, now read in index order (jobs/operations/admin_scale.py
read_in_index_order: a task-name or actor prefix read as a merge of each value's rows), show exactly
the rows they showed before: every page, concatenated, is the plain ORM query's result, on a small
table full of ties (runs of rows with one date) and awkward names (a prefix without its dot, a
literal "_", an exact id equal to the search term, NULL names). The plans are held by
tests/jobs/test_admin_index_order.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django_celery_results.models import TaskResult

from audit.models import AuditLog
from jobs.models import DeadLetter
from jobs.operations.admin_scale import read_in_index_order

PER_PAGE = 100
RESULTS = "/admin/django_celery_results/taskresult/"

NAMES = [
    "tasks.payments.process_invoice_payment",
    "tasks.payments.send_payment_reminder",
    "tasks.paymentsX.other",  # starts with "tasks.payments", not with "tasks.payments."
    "tasks.pay_ments.odd",  # "_" is literal in a search, not LIKE's any-character
    "tasks.payXments.odd",
    "tasks.deals.send_lead_follow_up",
    None,
]
STATUSES = ["SUCCESS", "SUCCESS", "SUCCESS", "FAILURE", "RETRY"]


@pytest.fixture
def small_history(db):
    start = timezone.now() - timedelta(days=1)
    rows = [
        TaskResult(
            task_id=f"id-{i}",
            task_name=NAMES[(i * 5) % len(NAMES)],
            status=STATUSES[(i // 3) % len(STATUSES)],
            date_done=start + timedelta(seconds=i // 9),  # runs of 9 rows share a date_done
        )
        for i in range(1500)
    ]
    # An exact id equal to a search term, under a name that does not start with it.
    rows.append(TaskResult(task_id="tasks.payments", task_name=NAMES[5], status="FAILURE", date_done=start))
    TaskResult.objects.bulk_create(rows)
    # date_done is auto_now, which bulk_create applied: give the rows their times (and ties) back.
    for i, row in enumerate(rows[:-1]):
        row.date_done = start + timedelta(seconds=i // 9)
    TaskResult.objects.bulk_update(rows, ["date_done"], batch_size=500)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE django_celery_results_taskresult")


def _every_page(client, path: str) -> tuple[list[int], object]:
    shown, first = [], None
    for number in range(1, 40):
        response = client.get(f"{path}&p={number}")
        if response.status_code == 302:  # past the last page of an exact count
            break
        assert response.status_code == 200
        changelist = response.context["cl"]
        first = first or changelist
        rows = [r.pk for r in changelist.result_list]
        shown.extend(rows)
        if len(rows) < PER_PAGE or not changelist.multi_page:
            break
    return shown, first


ORDER = ("-date_done", "-pk")
CASES = [
    ("q=tasks.payments", Q(task_id="tasks.payments") | Q(task_name__startswith="tasks.payments")),
    ("q=tasks.payments.", Q(task_id="tasks.payments.") | Q(task_name__startswith="tasks.payments.")),
    ("q=tasks.pay_", Q(task_id="tasks.pay_") | Q(task_name__startswith="tasks.pay_")),
    ("q=tasks.", Q(task_id="tasks.") | Q(task_name__startswith="tasks.")),
    (
        "status=FAILURE&q=tasks.payments",
        Q(status="FAILURE") & (Q(task_id="tasks.payments") | Q(task_name__startswith="tasks.payments")),
    ),
    ("status=FAILURE", Q(status="FAILURE")),
    (
        "task_name=tasks.payments.send_payment_reminder&status=SUCCESS",
        Q(task_name=NAMES[1], status="SUCCESS"),
    ),
    (
        "task_name=tasks.deals.send_lead_follow_up&q=tasks.payments",
        Q(task_name=NAMES[5]) & (Q(task_id="tasks.payments") | Q(task_name__startswith="tasks.payments")),
    ),
    ("q=id-42", Q(task_id="id-42") | Q(task_name__startswith="id-42")),
    ("q=nothing.matches", Q(pk__in=[])),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "match"), CASES, ids=[c[0] for c in CASES])
def test_every_page_shows_exactly_the_rows_of_the_plain_query(small_history, admin_client, query, match):
    shown, changelist = _every_page(admin_client, f"{RESULTS}?{query}")
    expected = list(TaskResult.objects.filter(match).order_by(*ORDER).values_list("pk", flat=True))
    assert shown == expected
    assert len(shown) == len(set(shown))


@pytest.mark.django_db
def test_a_search_sorted_by_another_column_is_still_right(small_history, admin_client):
    # Sorted by a clicked column (status, then the default order): no index gives that order, the
    # merge still returns the same rows in the same order as the plain query.
    shown, changelist = _every_page(admin_client, f"{RESULTS}?q=tasks.payments&o=5.-4")
    assert changelist.queryset.query.order_by[0] == "status"
    assert shown == list(changelist.queryset._clone().values_list("pk", flat=True))


@pytest.mark.django_db
def test_a_merged_page_is_the_slice_of_the_plain_queryset(small_history):
    # read_in_index_order straight: any slice, including a page past the end and a partial last one.
    from jobs.operations.result_admin import TaskResultAdmin

    admin = TaskResultAdmin(TaskResult, None)
    base = TaskResult.objects.order_by(*ORDER)
    found, _ = admin.get_search_results(None, base, "tasks.pay")
    assert found.index_order_branches
    plain = list(found._clone().values_list("pk", flat=True))
    for bottom, top in (
        (0, 100),
        (100, 137),
        (len(plain) - 10, len(plain) + 50),
        (len(plain) + 5, len(plain) + 9),
    ):
        assert [r.pk for r in read_in_index_order(found, bottom, top)] == plain[bottom:top]


@pytest.mark.django_db
def test_dead_letters_and_audit_log_searches_show_exactly_the_plain_rows(admin_client):
    now = timezone.now()
    DeadLetter.objects.bulk_create(
        DeadLetter(
            task_id=f"d-{i}",
            task_name=NAMES[i % 6],
            exception_type="builtins.KeyError",
            first_failed_at=now,
            last_failed_at=now - timedelta(seconds=i // 4),
            status=["open", "replayed", "discarded"][i % 3],
        )
        for i in range(700)
    )
    AuditLog.objects.bulk_create(
        AuditLog(
            actor=["alice", "alicia", "bob", "task:tasks.deals.x", "task:tasks.payments.y"][i % 5],
            action="status:a->b",
            object_type="marketplace.deal",
            object_id="alice" if i == 7 else str(i),  # an object id equal to a search term
            created_at=now - timedelta(seconds=i // 6),
        )
        for i in range(900)
    )
    cases = [
        ("/admin/jobs/deadletter/?q=tasks.payments", DeadLetter, Q(task_name__startswith="tasks.payments")),
        (
            "/admin/jobs/deadletter/?status__exact=open&q=tasks.",
            DeadLetter,
            Q(status="open", task_name__startswith="tasks."),
        ),
        ("/admin/audit/auditlog/?q=alice", AuditLog, Q(actor__startswith="alice") | Q(object_id="alice")),
        ("/admin/audit/auditlog/?q=task:", AuditLog, Q(actor__startswith="task:")),
    ]
    for path, model, match in cases:
        order = ("-last_failed_at", "-pk") if model is DeadLetter else ("-created_at", "-pk")
        shown, _ = _every_page(admin_client, path)
        assert shown == list(model.objects.filter(match).order_by(*order).values_list("pk", flat=True)), path
