"""Query counting for tests: fail when a block runs more SQL than it should, and say which.

    with assert_max_queries(4):
        refresh_dealer_performance()

On failure the message lists every query the block ran, numbered, with its SQL, so an N+1 is
visible at a glance (the same statement repeated with different ids)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import CaptureQueriesContext

SQL_SHOWN = 2000  # characters of each statement shown in a failure message
COLUMNS_SHOWN = 60  # a longer SELECT column list is elided: the FROM and WHERE are what tell


class QueryLog:
    """The queries a block ran; filled in when the block ends."""

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []

    @property
    def count(self) -> int:
        return len(self.queries)

    def __len__(self) -> int:
        return self.count

    @property
    def sql(self) -> list[str]:
        return [query["sql"] for query in self.queries]

    def describe(self) -> str:
        return "\n".join(
            f"{n}. {_shorten(query['sql'])}  [{query.get('time', '?')} s]"
            for n, query in enumerate(self.queries, start=1)
        )


def _shorten(sql: str) -> str:
    head, sep, rest = sql.partition(" FROM ")
    if sep and head.startswith("SELECT ") and len(head) > COLUMNS_SHOWN:
        sql = f"{head[:COLUMNS_SHOWN]}...{sep}{rest}"
    return sql if len(sql) <= SQL_SHOWN else f"{sql[:SQL_SHOWN]}... ({len(sql)} characters)"


@contextmanager
def count_queries(using: str = DEFAULT_DB_ALIAS) -> Iterator[QueryLog]:
    """Record the queries run in the block on connection `using` (DEBUG or not)."""
    log = QueryLog()
    with CaptureQueriesContext(connections[using]) as captured:
        yield log
    log.queries = list(captured.captured_queries)


@contextmanager
def assert_max_queries(n: int, using: str = DEFAULT_DB_ALIAS) -> Iterator[QueryLog]:
    """Fail if the block runs more than `n` queries, listing the SQL of every one it ran."""
    with count_queries(using) as log:
        yield log
    if log.count > n:
        raise AssertionError(f"Expected at most {n} queries, {log.count} were executed:\n{log.describe()}")
