"""Admin changelists that stay fast on tables of millions of rows (task results, dead letters, the
outbox, the effect ledger, the audit log): no page scans its table.

- Counts are the planner's estimate (EXPLAIN: pg_class.reltuples scaled by the table's size, times
  the filters' selectivity) once it passes ESTIMATED_ABOVE rows, shown as "about N"; below that an
  exact count, bounded by a LIMIT. No changelist runs count(*) over a big table.
- Search is what an index serves: exact values (a task id) and prefixes (`LIKE 'x%'` on a
  varchar_pattern_ops index), never `icontains` on every column.
- A filter's choices come from walking its column's index, one lookup per distinct value, never a
  `SELECT DISTINCT` over the table; no date_hierarchy (it DISTINCTs the dates) and no facets.
On SQLite (`make run`) the same admin runs with exact counts and plain DISTINCTs.
"""

from __future__ import annotations

import json
from functools import cached_property

from django.contrib import admin
from django.core.exceptions import EmptyResultSet, ValidationError
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db import connections
from django.db.models import Q

ESTIMATED_ABOVE = 1000
# How many distinct values a filter lists at most (task names, workers, queues: tens).
FILTER_CHOICES_LIMIT = 200


def planner_estimate(queryset) -> int:
    """The rows the planner expects `queryset` to return (PostgreSQL's EXPLAIN; nothing is run)."""
    try:
        sql, params = queryset.order_by().query.sql_with_params()
    except EmptyResultSet:  # queryset.none(): nothing to ask
        return 0
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """A paginator that never counts a big result: past ESTIMATED_ABOVE rows its count is the
    planner's estimate (`estimated` is then True), and any page number is served (a page past the
    real end is just empty), so no page needs the exact total."""

    estimated = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if connections[queryset.db].vendor != "postgresql":
            return queryset.count()
        estimate = planner_estimate(queryset)
        if estimate <= ESTIMATED_ABOVE:
            # Exact, but bounded: stale statistics cannot turn this into a count of the table.
            bound = 10 * ESTIMATED_ABOVE
            exact = queryset.order_by()[: bound + 1].count()
            if exact <= bound:
                return exact
            estimate = exact
        self.estimated = True
        return estimate

    def validate_number(self, number):
        if not self.count or not self.estimated:
            return super().validate_number(number)
        try:
            number = int(number)
        except (TypeError, ValueError) as exc:
            raise PageNotAnInteger("That page number is not an integer") from exc
        if number < 1:
            raise EmptyPage("That page number is less than 1")
        return number

    def page(self, number):
        number = self.validate_number(number)
        if not self.estimated:
            return super().page(number)
        bottom = (number - 1) * self.per_page
        return self._get_page(self.object_list[bottom : bottom + self.per_page], number, self)


def indexed_distinct_values(model, column: str, *, limit: int = FILTER_CHOICES_LIMIT) -> list:
    """The distinct values of an indexed column, smallest first: on PostgreSQL one index lookup
    per value (a recursive CTE: the next value above the last), however many rows share each."""
    connection = connections["default"]
    table = connection.ops.quote_name(model._meta.db_table)
    col = connection.ops.quote_name(column)
    if connection.vendor != "postgresql":
        sql = f"SELECT DISTINCT {col} FROM {table} WHERE {col} IS NOT NULL ORDER BY {col} LIMIT %s"
        params = [limit]
    else:
        sql = (
            f"WITH RECURSIVE v(value) AS ("
            f" (SELECT {col} FROM {table} WHERE {col} IS NOT NULL ORDER BY {col} LIMIT 1)"
            f" UNION ALL"
            f" SELECT (SELECT {col} FROM {table} WHERE {col} > v.value ORDER BY {col} LIMIT 1)"
            f" FROM v WHERE v.value IS NOT NULL"
            f") SELECT value FROM v WHERE value IS NOT NULL LIMIT %s"
        )
        params = [limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        values = [row[0] for row in cursor.fetchall()]
        if model._meta.get_field(column).null:
            # ORDER BY the column: the index answers, even when NULLs are most rows.
            cursor.execute(f"SELECT 1 FROM {table} WHERE {col} IS NULL ORDER BY {col} LIMIT 1")
            if cursor.fetchone():
                values.append(None)
    return values


class IndexedValuesFieldListFilter(admin.AllValuesFieldListFilter):
    """Django's "all values" filter, its choices read by walking the column's index
    (indexed_distinct_values) instead of a SELECT DISTINCT over the whole table."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = indexed_distinct_values(model, field.column)


class LargeTableAdmin(admin.ModelAdmin):
    """A ModelAdmin for a table of millions of rows. Search: `search_exact_fields` match the whole
    term (a task id), `search_prefix_fields` its beginning (a task name); each needs its index
    (a varchar_pattern_ops one for a prefix). list_filter columns need an index too
    (IndexedValuesFieldListFilter for a column without choices)."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    search_exact_fields: tuple[str, ...] = ()
    search_prefix_fields: tuple[str, ...] = ()

    def get_search_fields(self, request):
        return (*self.search_exact_fields, *self.search_prefix_fields)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q()
        for name in self.search_exact_fields:
            try:
                value = self.model._meta.get_field(name).to_python(term)
            except ValidationError:
                continue  # not a value this column can hold (a UUID field and a task name)
            match |= Q(**{name: value})
        for name in self.search_prefix_fields:
            match |= Q(**{f"{name}__startswith": term})
        if not match:
            return queryset.none(), False
        return queryset.filter(match), False
