"""GET /metrics (Prometheus text): HTTP requests, task outcomes, cache hits and misses, and gauges
read at scrape time (queue depth and oldest age, dead letters, outbox backlog, beat heartbeat).

Where the numbers come from:
- counters and histograms of this process: prometheus_client's default REGISTRY (HTTP requests
  from RequestMetricsMiddleware below, cache reads counted by integrations/, task outcomes of an
  in-process worker);
- counters written by other processes (worker pool children, other gunicorn workers) in
  prometheus_client's multiprocess mode: every `*.db` file under METRICS_DIR, merged;
- gauges computed now, each collector bounded in time: the broker and Redis with 0.5 s socket
  timeouts, the database with a 1 s statement timeout. A collector that fails reports
  platform_metrics_collector_up{collector=...} 0 instead of failing the scrape.

Queue depth comes from either broker (jobs/brokers/). The oldest message's age only where the
broker shows it without delivering it (Redis); on RabbitMQ the age series of a non-empty queue
is absent, not invented, and platform_queue_oldest_message_age_known says so.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from jobs.models import DeadLetter
from jobs.operations.queue_ops import queue_stats
from jobs.outbox import outbox_backlog
from jobs.schedules.scheduler import read_beat_heartbeat

logger = logging.getLogger("platform.http")

HTTP_REQUESTS = Counter(
    "platform_http_requests",
    "HTTP requests answered, per method, URL route and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "platform_http_request_duration_seconds",
    "Time to answer an HTTP request, per method and URL route.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)

DATABASE_STATEMENT_TIMEOUT_MS = 1000


class RequestMetricsMiddleware:
    """Counts and times every request, and logs one structured line for it.

    The route label is the URL pattern ("api/v1/jobs/<str:job_id>"), never the raw path, so
    the number of series stays bounded whatever clients ask for."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        started = time.monotonic()
        response = self.get_response(request)
        duration = time.monotonic() - started
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "<unmatched>"
        HTTP_REQUESTS.labels(method=request.method, route=route, status=str(response.status_code)).inc()
        HTTP_LATENCY.labels(method=request.method, route=route).observe(duration)
        if request.path != "/metrics":  # a scrape every few seconds is noise in the log
            logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "event": "http_request",
                    "method": request.method,
                    "path": request.path,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(duration * 1000, 2),
                },
            )
        return response


# --- Scrape-time collectors -------------------------------------------------------------------


def _collector_up(name: str, ok: bool) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "platform_metrics_collector_up",
        "1 if the collector could read its source at this scrape.",
        labels=["collector"],
    )
    family.add_metric([name], 1.0 if ok else 0.0)
    return family


class BrokerCollector:
    """Queue depth, oldest waiting message, consumers and paused flag, read from the broker now."""

    def collect(self) -> Iterable[Metric]:

        try:
            stats = queue_stats()
        except Exception as exc:
            logger.warning("metrics: broker unreadable: %s", exc)
            yield _collector_up("broker", False)
            return
        depth = GaugeMetricFamily("platform_queue_depth", "Messages waiting in a queue.", labels=["queue"])
        age = GaugeMetricFamily(
            "platform_queue_oldest_message_age_seconds",
            "How long the oldest waiting message of a queue has waited (0 when empty; absent when "
            "the broker cannot tell, see platform_queue_oldest_message_age_known).",
            labels=["queue"],
        )
        age_known = GaugeMetricFamily(
            "platform_queue_oldest_message_age_known",
            "1 if the oldest waiting message's age could be read (RabbitMQ: only when empty).",
            labels=["queue"],
        )
        consumers = GaugeMetricFamily(
            "platform_queue_consumers",
            "Workers consuming a queue, as the broker counts them (RabbitMQ only).",
            labels=["queue"],
        )
        paused = GaugeMetricFamily(
            "platform_queue_paused",
            "1 while consumption of a queue is paused from the ops dashboard.",
            labels=["queue"],
        )
        for queue in stats:
            depth.add_metric([queue.name], queue.depth)
            if queue.depth == 0:
                age.add_metric([queue.name], 0.0)
            elif queue.oldest_age_seconds is not None:
                age.add_metric([queue.name], queue.oldest_age_seconds)
            known = queue.depth == 0 or queue.oldest_age_seconds is not None
            age_known.add_metric([queue.name], 1.0 if known else 0.0)
            if queue.consumers is not None:
                consumers.add_metric([queue.name], queue.consumers)
            if queue.paused is not None:
                paused.add_metric([queue.name], 1.0 if queue.paused else 0.0)
        yield from (depth, age, age_known, consumers, paused)
        yield _collector_up("broker", True)


class BeatCollector:
    """The leading beat's heartbeat, from PostgreSQL (where the lease lives)."""

    def collect(self) -> Iterable[Metric]:
        try:
            beat = read_beat_heartbeat()
        except Exception as exc:
            logger.warning("metrics: beat heartbeat unreadable: %s", exc)
            yield _collector_up("beat", False)
            return
        if beat:
            family = GaugeMetricFamily(
                "platform_beat_heartbeat_age_seconds", "Seconds since the leading beat last ticked."
            )
            family.add_metric([], max(0.0, beat["age_seconds"]))
            yield family
        yield _collector_up("beat", True)


class DatabaseCollector:
    """Open dead letters per task, and the outbox backlog, counted now."""

    def collect(self) -> Iterable[Metric]:

        try:
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute(f"SET LOCAL statement_timeout = {DATABASE_STATEMENT_TIMEOUT_MS}")
                open_by_task = list(
                    DeadLetter.objects.filter(status=DeadLetter.Status.OPEN)
                    .values_list("task_name")
                    .annotate(count=Count("id"))
                    .order_by("task_name")
                )
                backlog = outbox_backlog()
        except Exception as exc:
            logger.warning("metrics: database unreadable: %s", exc)
            yield _collector_up("database", False)
            return
        letters = GaugeMetricFamily(
            "platform_dead_letters_open",
            "Dead letters waiting for an operator, per task name.",
            labels=["task"],
        )
        for task_name, count in open_by_task:
            letters.add_metric([task_name], count)
        yield letters
        total = GaugeMetricFamily("platform_dead_letters_open_total", "Dead letters waiting, all tasks.")
        total.add_metric([], sum(count for _, count in open_by_task))
        yield total
        outbox = GaugeMetricFamily(
            "platform_outbox_backlog", "Open outbox messages: their job not yet completed."
        )
        outbox.add_metric([], backlog)
        yield outbox
        yield _collector_up("database", True)


# --- Counters from this process and from every process that writes metric files ----------------


def metrics_dir() -> str:
    """The directory whose metric files (at any depth) are merged into /metrics."""
    return settings.METRICS_DIR or os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


class ProcessesCollector:
    """This process's REGISTRY, plus the files of multiprocess writers, merged by metric name."""

    def collect(self) -> Iterable[Metric]:
        sources: list[Iterable[Metric]] = []
        # A process in multiprocess mode writes its own values to a file too: reading its
        # REGISTRY as well would count them twice.
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            sources.append(REGISTRY.collect())
        directory = metrics_dir()
        if directory and Path(directory).is_dir():
            files = [str(path) for path in Path(directory).rglob("*.db")]
            if files:
                sources.append(MultiProcessCollector.merge(files, accumulate=True))
        return _merge(sources)


def _merge(sources: list[Iterable[Metric]]) -> list[Metric]:
    merged: dict[str, Metric] = {}
    values: dict[str, dict[tuple, float]] = {}
    for source in sources:
        for family in source:
            if family.name not in merged:
                merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                values[family.name] = {}
            seen = values[family.name]
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue  # per-process creation times; meaningless once summed
                key = (sample.name, tuple(sorted(sample.labels.items())))
                # The same series from two processes: counters and histograms add up.
                seen[key] = seen.get(key, 0.0) + sample.value
    for name, family in merged.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
    return list(merged.values())


@require_GET
def metrics_view(request):
    """GET /metrics. Unauthenticated: bind it to a private interface (ops/gunicorn.conf.py)."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in (ProcessesCollector(), BrokerCollector(), BeatCollector(), DatabaseCollector()):
        registry.register(collector)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
