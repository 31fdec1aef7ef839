"""ops/grafana-dashboard.json and ops/prometheus-alerts.yml name only metrics that GET /metrics
exports (read from the app's own /metrics output, not a hand list), cover what operators watch,
and the alert rules pass `promtool check rules` and their unit tests (`promtool test rules`)."""

import json
import re
import subprocess
from datetime import timedelta

import pytest
import yaml
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from jobs.schedules.models import BeatLease
from jobs.schedules.scheduler import LEASE_NAME
from tests.support.processes import ROOT

OPS = ROOT / "ops"
PROMTOOL = "/usr/bin/promtool"  # Debian's prometheus package (.ci/run installs it)

# Sample names of each family type, as the text exposition writes them.
SUFFIXES = {
    "counter": ["_total"],
    "histogram": ["_bucket", "_count", "_sum"],
    "summary": ["_count", "_sum", ""],
}
KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: what is left once strings, label matchers,
    ranges, grouping clauses and function calls are taken out."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', "", expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    tokens = re.findall(r"(?<![\w.$])([a-zA-Z_:][\w:]*)\b(?!\s*\()", expr)
    return {token for token in tokens if token not in KEYWORDS and token.lower() not in {"inf", "nan"}}


def test_metric_names_reads_metrics_and_nothing_else():
    expr = (
        'sum by (queue) (rate(platform_a_total{state="FAILURE",queue=~"$queue"}[$__rate_interval]))'
        " / on (queue) group_left platform_b > 0 unless platform_c offset 15m"
        " and absent(platform_d) or histogram_quantile(0.95, sum by (le) (rate(platform_e_bucket[5m])))"
    )
    assert metric_names(expr) == {
        "platform_a_total",
        "platform_b",
        "platform_c",
        "platform_d",
        "platform_e_bucket",
    }


@pytest.fixture
def exported(client, ops_broker, db) -> set[str]:
    """Every sample name GET /metrics can export, read from the app's own output; a beat has
    ticked so its heartbeat family is there too."""
    now = timezone.now()
    BeatLease.objects.create(
        name=LEASE_NAME, holder="test", expires_at=now + timedelta(seconds=30), heartbeat_at=now
    )
    response = client.get("/metrics")
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.content.decode()):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, [""])}
        names |= {sample.name for sample in family.samples}
    return names


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((OPS / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            # label_values(metric, label): the metric is the first argument.
            exprs.append(re.sub(r"label_values\((\w+),\s*\w+\)", r"\1", variable["definition"]))
    return exprs


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((OPS / "prometheus-alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_every_dashboard_expression_names_only_exported_metrics(exported):
    used = {name for expr in dashboard_expressions() for name in metric_names(expr)}

    assert used - exported == set()
    # What operators watch, each on the dashboard: throughput and failures (one counter, by
    # state), queue depth and age, dead letters, outbox backlog, beat heartbeat.
    assert {
        "platform_task_outcomes_total",
        "platform_queue_depth",
        "platform_queue_oldest_message_age_seconds",
        "platform_dead_letters_open_total",
        "platform_outbox_backlog",
        "platform_beat_heartbeat_age_seconds",
    } <= used
    exprs = "\n".join(dashboard_expressions())
    assert 'state="SUCCESS"' in exprs and 'state="FAILURE"' in exprs


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_every_alert_expression_names_only_exported_metrics(exported):
    used = {name for expr in alert_expressions() for name in metric_names(expr)}

    assert used and used - exported == set()
    names = {
        rule["alert"]
        for group in yaml.safe_load((OPS / "prometheus-alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    assert {"PlatformQueueStuck", "PlatformBeatSilent", "PlatformDeadLettersGrowing"} <= names


def _promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=OPS, capture_output=True, text=True, timeout=60)


def test_promtool_accepts_the_alert_rules():
    checked = _promtool("check", "rules", "prometheus-alerts.yml")

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_expressions())} rules found" in checked.stdout


def test_the_alerts_fire_on_trouble_and_stay_quiet_otherwise():
    # ops/prometheus-alerts.test.yml: a stuck queue beside a draining one, a beat going silent
    # and one gone, dead letters growing then steady.
    tested = _promtool("test", "rules", "prometheus-alerts.test.yml")

    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_dashboard_imports_on_any_prometheus_data_source():
    dashboard = json.loads((OPS / "grafana-dashboard.json").read_text())
    panels = dashboard["panels"]

    assert len({panel["id"] for panel in panels}) == len(panels)
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    source = variables["datasource"]
    assert source["type"] == "datasource" and source["query"] == "prometheus"
    # Every panel and query reads the data source chosen at import, none a fixed one.
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"]
        assert all(target["datasource"]["uid"] == "${datasource}" for target in panel["targets"])


def test_promtool_accepts_the_scrape_config():
    checked = _promtool("check", "config", "prometheus.yml")

    assert checked.returncode == 0, checked.stdout + checked.stderr
