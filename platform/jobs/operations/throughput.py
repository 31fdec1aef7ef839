"""The last hour of jobs succeeded and failed, per minute and per queue, for the ops dashboard's
chart (jobs/operations/ops_dashboard.py), drawn server-side as inline SVG: no script, nothing fetched.

The numbers come from the result rows we already keep (django-celery-results' TaskResult, one row
per job, `date_done` set when it finished): one grouped query over the last hour only, a range
scan of TaskResult's `date_done` index (tests/ops/test_throughput_chart.py checks the plan), so
the page costs the same with 10 M rows as with 10 thousand. A result row does not record its
queue: a job counts under the queue its task name routes to (jobs/queues.py TASK_ROUTES, the
default queue otherwise, as Celery's own router decides), which is where every platform job goes
unless sent elsewhere by hand.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.utils import timezone
from django.utils.html import escape
from django_celery_results.models import TaskResult

from jobs.celery_app import queue_of_task
from jobs.queues import QUEUE_NAMES

MINUTES = 60
# Result states counted, and the name each outcome has on the page and in the chart's hooks.
OUTCOMES = {"SUCCESS": "succeeded", "FAILURE": "failed"}


@lru_cache(maxsize=1024)
def window(now: datetime) -> tuple[datetime, datetime]:
    """The MINUTES whole minutes up to and including the current one: [start, end)."""
    end = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return end - timedelta(minutes=MINUTES), end


def outcome_counts(*, start: datetime, end: datetime):
    """(minute, task_name, status, count) rows of finished jobs in [start, end)."""
    return (
        TaskResult.objects.filter(date_done__gte=start, date_done__lt=end, status__in=list(OUTCOMES))
        .annotate(minute=TruncMinute("date_done", tzinfo=UTC))
        .values("minute", "task_name", "status")
        .annotate(count=Count("id"))
        .order_by()
    )


@dataclass
class Series:
    queue: str
    outcome: str  # "succeeded" or "failed"
    values: list[int]  # one per minute of the window, oldest first

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass
class Throughput:
    start: datetime
    series: list[Series]  # every queue, succeeded then failed
    failing_tasks: list[dict] = field(default_factory=list)  # {"task", "queue", "failed"}, most first

    @property
    def minutes(self) -> list[datetime]:
        return [self.start + timedelta(minutes=n) for n in range(MINUTES)]

    def by_queue(self) -> dict[str, dict[str, Series]]:
        grouped: dict[str, dict[str, Series]] = defaultdict(dict)
        for series in self.series:
            grouped[series.queue][series.outcome] = series
        return dict(grouped)


def last_hour(*, now: datetime) -> Throughput:
    """Succeeded and failed jobs per minute and queue over the last hour, and the failing tasks."""
    start, end = window(now)
    queues = list(QUEUE_NAMES)
    values = {(queue, outcome): [0] * MINUTES for queue in queues for outcome in OUTCOMES.values()}
    failed_by_task: dict[str, int] = defaultdict(int)
    for row in outcome_counts(start=start, end=end):
        queue = queue_of_task(row["task_name"] or "")
        if queue not in queues:  # a route to a queue outside QUEUE_NAMES: shown, not dropped
            queues.append(queue)
            for outcome in OUTCOMES.values():
                values[(queue, outcome)] = [0] * MINUTES
        minute = int((row["minute"] - start).total_seconds() // 60)
        values[(queue, OUTCOMES[row["status"]])][minute] += row["count"]
        if row["status"] == "FAILURE":
            failed_by_task[row["task_name"] or ""] += row["count"]
    series = [
        Series(queue=queue, outcome=outcome, values=values[(queue, outcome)])
        for queue in queues
        for outcome in OUTCOMES.values()
    ]
    failing = [
        {"task": task, "queue": queue_of_task(task), "failed": count}
        for task, count in sorted(failed_by_task.items(), key=lambda item: (-item[1], item[0]))
    ]
    return Throughput(start=start, series=series, failing_tasks=failing)


# --- The chart --------------------------------------------------------------------------------

BAR = 6  # px per minute
LABEL = 110  # px for the queue names on the left
BAND = 44  # px per queue: succeeded above its baseline, failed below
HALF = 18  # px of bar height at the window's largest count
TOP = 14  # px above the first band, for the time axis
COLOURS = {"succeeded": "#2e7d32", "failed": "#c62828"}


def _hhmm(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%H:%M")  # TIME_ZONE, as the rest of admin


def render_svg(throughput: Throughput, *, flower_url: str = "") -> str:
    """The chart as an inline <svg id="throughput-chart">, one <g class="series"> per queue and
    outcome with its per-minute counts in data-values (oldest minute first) and data-total.

    Hooks for browser tests: svg#throughput-chart, g.series[data-queue][data-outcome]."""
    grouped = throughput.by_queue()
    # Each outcome on its own scale: a few failures beside thousands of successes still show.
    peak = {
        outcome: max((max(s.values) for s in throughput.series if s.outcome == outcome), default=0) or 1
        for outcome in OUTCOMES.values()
    }
    width = LABEL + BAR * MINUTES + 20  # room for the last time label
    height = TOP + BAND * len(grouped) + 4
    start = throughput.start
    parts = [
        f'<svg id="throughput-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'data-start="{start.isoformat()}" data-minutes="{MINUTES}" '
        f'data-peak-succeeded="{peak["succeeded"]}" data-peak-failed="{peak["failed"]}" '
        f'aria-label="Jobs succeeded and failed per minute and queue, the last hour">',
        f"<title>Jobs per minute, {_hhmm(start)} to {_hhmm(start + timedelta(minutes=MINUTES))} "
        f"(succeeded up, tallest {peak['succeeded']}; failed down, tallest {peak['failed']})</title>",
    ]
    for n in range(0, MINUTES + 1, 15):
        x = LABEL + n * BAR
        parts.append(
            f'<text x="{x}" y="10" font-size="9" text-anchor="middle" fill="#666">'
            f"{_hhmm(start + timedelta(minutes=n))}</text>"
            f'<line x1="{x}" y1="{TOP - 2}" x2="{x}" y2="{height - 4}" stroke="#ddd" stroke-width="1"/>'
        )
    for index, (queue, outcomes) in enumerate(grouped.items()):
        base = TOP + index * BAND + BAND // 2
        label = escape(queue)
        if flower_url:
            label = f'<a href="{escape(flower_url.rstrip("/"))}/broker">{label}</a>'
        parts.append(
            f'<text x="4" y="{base + 4}" font-size="11" fill="#333">{label}</text>'
            f'<line x1="{LABEL}" y1="{base}" x2="{LABEL + BAR * MINUTES}" y2="{base}" '
            'stroke="#bbb" stroke-width="1"/>'
        )
        for outcome, series in outcomes.items():
            up = outcome == "succeeded"
            parts.append(
                f'<g class="series" data-queue="{escape(queue)}" data-outcome="{outcome}" '
                f'data-total="{series.total}" data-values="{",".join(map(str, series.values))}" '
                f'fill="{COLOURS[outcome]}">'
            )
            for minute, count in enumerate(series.values):
                if not count:
                    continue
                h = max(1.0, round(HALF * count / peak[outcome], 1))
                y = base - h if up else base
                when = _hhmm(start + timedelta(minutes=minute))
                parts.append(
                    f'<rect x="{LABEL + minute * BAR}" y="{y}" width="{BAR - 1}" height="{h}">'
                    f"<title>{escape(queue)} {when}: {count} {outcome}</title></rect>"
                )
            parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
