"""Admin changelists that stay fast on tables of millions of rows (task results, dead letters, the
outbox, the effect ledger, the audit log): no page scans its table.

- Counts are the planner's estimate (EXPLAIN: pg_class.reltuples scaled by the table's size, times
  the filters' selectivity) once it passes ESTIMATED_ABOVE rows, shown as "about N"; below that an
  exact count, bounded by a LIMIT. No changelist runs count(*) over a big table.
- Search is what an index serves: exact values (a task id) and prefixes (`LIKE 'x%'` on a
  varchar_pattern_ops index), never `icontains` on every column.
- A filter's choices come from walking its column's index, one lookup per distinct value, never a
  `SELECT DISTINCT` over the table; no date_hierarchy (it DISTINCTs the dates) and no facets.
- Pages are read in index order, whatever the number of matching rows (issue 24): a filter on a column
  is served by an index on (column, the list's order...), so its newest rows are the first the index
  gives; an "is empty" filter (the outbox's not completed, never published) by a partial index on the
  list's order holding only the rows it shows (jobs 0006). A prefix search on a column of few
  distinct values (task names, actors) is resolved to the values it covers (merge_prefix_fields: one
  index descent per value) and the page read as the merge of each value's rows in index order
  (PostgreSQL's Merge Append over one ordered index scan per value: it stops after the page's rows),
  never a sort of every match.
On SQLite (`make run`) the same admin runs with exact counts and plain DISTINCTs.
"""

from __future__ import annotations

import json
from functools import cached_property

from django.contrib import admin
from django.core.exceptions import EmptyResultSet, FieldDoesNotExist, ValidationError
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
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if not self.estimated and top + self.orphans >= self.count:
            top = self.count  # Django's paginator: the last page takes the orphans
        return self._get_page(read_in_index_order(self.object_list, bottom, top), number, self)


def read_in_index_order(queryset, bottom: int, top: int):
    """queryset[bottom:top]. When the queryset carries `index_order_branches` (disjoint querysets
    whose union is its rows, set by LargeTableAdmin's search) and orders by plain columns, on
    PostgreSQL: the page's primary keys are read as one UNION ALL of the branches, each branch in
    the list's order (an index scan, cut at `top` rows), merged by a Merge Append that stops at
    `top`: rows read grow with the page's depth, never with the number of matches. The page is then
    fetched by primary key, in the same order, as a queryset like any other."""
    branches = getattr(queryset, "index_order_branches", None)
    if not branches or top <= bottom or connections[queryset.db].vendor != "postgresql":
        return queryset[bottom:top]
    connection = connections[queryset.db]
    qn = connection.ops.quote_name
    model = queryset.model
    columns, order = [], []
    for term in queryset.query.order_by:
        name = term.removeprefix("-") if isinstance(term, str) else ""
        if not name or "__" in name or name == "?":
            return queryset[bottom:top]  # an expression, a relation, random: no index order to merge
        try:
            field = model._meta.pk if name == "pk" else model._meta.get_field(name)
        except FieldDoesNotExist:
            return queryset[bottom:top]  # an annotation
        if not field.concrete or field.is_relation:
            return queryset[bottom:top]
        columns.append(field.attname)
        order.append(f"{qn(field.column)} {'DESC' if term.startswith('-') else 'ASC'}")
    if not order:
        return queryset[bottom:top]
    pk = model._meta.pk
    if pk.attname not in columns:
        columns.append(pk.attname)
    parts, params = [], []
    for branch in branches:
        try:
            ordered = branch.order_by(*queryset.query.order_by).values_list(*columns)[:top]
            sql, branch_params = ordered.query.sql_with_params()
        except EmptyResultSet:
            continue  # a branch that cannot match
        parts.append(f"({sql})")
        params.extend(branch_params)
    if not parts:
        return queryset.none()
    # Each branch has its own ORDER BY ... LIMIT (without it the planner would not ask its index for
    # that order); over a UNION ALL in FROM, the outer ORDER BY ... LIMIT is a Merge Append of them.
    sql = (
        f"SELECT {qn(pk.column)} FROM ({' UNION ALL '.join(parts)}) AS merged"  # noqa: S608 names quoted from model metadata; values bound as parameters
        f" ORDER BY {', '.join(order)} LIMIT %s OFFSET %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, top - bottom, bottom])
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return queryset.none()
    # The page's rows by primary key (the filters still hold for them), in the list's order.
    return queryset.filter(pk__in=ids)


def indexed_prefix_values(model, column: str, prefix: str, *, limit: int = FILTER_CHOICES_LIMIT) -> list:
    """The distinct values of `column` that start with `prefix` (case-sensitive, as `startswith`),
    smallest first, at most `limit`: on PostgreSQL one descent of the column's varchar_pattern_ops
    index per value (a recursive CTE: the next value above the last within the prefix's range),
    however many rows share each value."""
    connection = connections["default"]
    table = connection.ops.quote_name(model._meta.db_table)
    col = connection.ops.quote_name(column)
    pattern = connection.ops.prep_for_like_query(prefix) + "%"
    if connection.vendor != "postgresql":
        sql = f"SELECT DISTINCT {col} FROM {table} WHERE {col} LIKE %s ESCAPE '\\' ORDER BY {col} LIMIT %s"  # noqa: S608 names quoted from model metadata; values bound as parameters
        params = [pattern, limit]
    else:
        # ~<~ / ~>~ are the byte-wise operators of varchar_pattern_ops: values with a prefix are
        # contiguous in that order (in a linguistic collation they need not be).
        sql = (
            f"WITH RECURSIVE v(value) AS ("  # noqa: S608 names quoted from model metadata; values bound as parameters
            f" (SELECT {col} FROM {table} WHERE {col} LIKE %s ORDER BY {col} USING ~<~ LIMIT 1)"
            f" UNION ALL"
            f" SELECT (SELECT {col} FROM {table} WHERE {col} LIKE %s AND {col} ~>~ v.value"
            f" ORDER BY {col} USING ~<~ LIMIT 1)"
            f" FROM v WHERE v.value IS NOT NULL"
            f") SELECT value FROM v WHERE value IS NOT NULL LIMIT %s"
        )
        params = [pattern, pattern, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def indexed_distinct_values(model, column: str, *, limit: int = FILTER_CHOICES_LIMIT) -> list:
    """The distinct values of an indexed column, smallest first: on PostgreSQL one index lookup
    per value (a recursive CTE: the next value above the last), however many rows share each."""
    connection = connections["default"]
    table = connection.ops.quote_name(model._meta.db_table)
    col = connection.ops.quote_name(column)
    if connection.vendor != "postgresql":
        sql = f"SELECT DISTINCT {col} FROM {table} WHERE {col} IS NOT NULL ORDER BY {col} LIMIT %s"  # noqa: S608 names quoted from model metadata; values bound as parameters
        params = [limit]
    else:
        sql = (
            f"WITH RECURSIVE v(value) AS ("  # noqa: S608 names quoted from model metadata; values bound as parameters
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
            cursor.execute(f"SELECT 1 FROM {table} WHERE {col} IS NULL ORDER BY {col} LIMIT 1")  # noqa: S608 names quoted from model metadata; values bound as parameters
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
    # A search_prefix_field of few distinct values (tens: task names, actors), with an index on
    # (field, the list's ordering..., pk) and its varchar_pattern_ops index: a prefix search is read
    # as the merge of each value's rows in index order (read_in_index_order).
    merge_prefix_field: str | None = None

    def get_search_fields(self, request):
        return (*self.search_exact_fields, *self.search_prefix_fields)

    def _search_match(self, term: str, *, prefix_fields) -> Q:
        match = Q()
        for name in self.search_exact_fields:
            try:
                value = self.model._meta.get_field(name).to_python(term)
            except ValidationError:
                continue  # not a value this column can hold (a UUID field and a task name)
            match |= Q(**{name: value})
        for name in prefix_fields:
            match |= Q(**{f"{name}__startswith": term})
        return match

    def index_order_branches(self, term: str) -> list[Q] | None:
        """Disjoint conditions whose union is the search `term`'s match, each one an index serves in
        the list's order: one per value of merge_prefix_field that starts with `term` (it implies
        the match: no LIKE left to blur the planner's estimate), and one for the rest of the match
        (an exact id: a few rows at most). None: no merge (another database, or more values than
        FILTER_CHOICES_LIMIT)."""
        field = self.merge_prefix_field
        if not field or connections["default"].vendor != "postgresql":
            return None
        column = self.model._meta.get_field(field).column
        values = indexed_prefix_values(self.model, column, term, limit=FILTER_CHOICES_LIMIT + 1)
        if len(values) > FILTER_CHOICES_LIMIT:
            return None
        branches = [Q(**{field: value}) for value in values]
        rest = self._search_match(term, prefix_fields=[f for f in self.search_prefix_fields if f != field])
        if rest:
            branches.append(rest & ~Q(**{f"{field}__startswith": term}))
        return branches

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        match = self._search_match(term, prefix_fields=self.search_prefix_fields)
        if not match:
            return queryset.none(), False
        found = queryset.filter(match)
        if self.merge_prefix_field in self.search_prefix_fields:
            branches = self.index_order_branches(term)
            if branches is not None:
                # Read by the paginator (read_in_index_order); a clone of `found` drops it, and
                # is then read the plain way: the same rows, sorted.
                found.index_order_branches = [queryset.filter(branch) for branch in branches]
        return found, False
