"""grafana/*.json: the dashboards parse as Grafana models, every PromQL expression in them parses (the real promtool),
and every metric an expression names is exposed by a freshly started `alert-receiver serve` (before any webhook:
labelled metrics are initialised with their known label values, receiver/metrics.py).

promtool 2.42 has no PromQL parser subcommand (`promtool promql` came later), so each expression becomes a recording
rule of a temporary file and `promtool check rules` parses them all. Grafana's variables are replaced first by what
Grafana would put there ($__rate_interval, $__range: a duration; $job: a job name inside a label matcher).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.binaries import require_binary
from tests.support.process import ReceiverProcess, wait_until

ROOT = Path(__file__).resolve().parents[2]
GRAFANA_DIR = ROOT / "grafana"
DASHBOARDS = sorted(GRAFANA_DIR.glob("*.json"))

_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h", "${job}": "alert-receiver",
              "$job": "alert-receiver"}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
             "inf", "nan", "atan2"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()")


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def panels(dashboard: dict) -> list[dict]:
    """Every panel, those inside (collapsed) rows included."""
    found = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def expressions(dashboard: dict) -> list[str]:
    return [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", []) if target.get("expr")]


def substitute(expr: str) -> str:
    for name, value in _VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers left once strings, label matchers, ranges and label
    lists are removed, that are neither function calls nor keywords."""
    text = _STRING.sub('""', substitute(expr))
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _LABEL_LISTS.sub("", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}


def unexposed(dashboards: dict[str, dict], exposed: set[str]) -> list[str]:
    """'<dashboard>: <metric> in <expr>' for every metric a dashboard names that /metrics does not expose."""
    return [f"{name}: {metric} in {expr}" for name, dashboard in dashboards.items() for expr in expressions(dashboard)
            for metric in sorted(metric_names(expr)) if metric not in exposed]


def promtool_parse(promtool: str, exprs: list[str], directory: Path) -> subprocess.CompletedProcess:
    rules = {"groups": [{"name": "grafana", "rules": [{"record": f"grafana:expr_{i}", "expr": substitute(expr)}
                                                      for i, expr in enumerate(exprs)]}]}
    path = directory / "grafana-exprs.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    return subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)


def exposed_names(exposition: str) -> set[str]:
    """Every sample name in a text exposition (histograms: _bucket, _sum, _count; counters: _total)."""
    return {sample.name for family in text_string_to_metric_families(exposition) for sample in family.samples}


# --------------------------------------------------------------------------------------------------
# The models


def test_there_are_the_two_dashboards() -> None:
    assert {p.name for p in DASHBOARDS} == {"alert-receiver-health.json", "alert-receiver-alerts.json"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_model(path: Path) -> None:
    dashboard = load(path)
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    with_queries = [panel for panel in panels(dashboard) if panel["type"] != "row"]
    assert with_queries
    for panel in with_queries:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"]["uid"] == "${datasource}", panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_the_dashboards_cover_what_the_platform_team_watches() -> None:
    names = {path.name: set().union(*(metric_names(e) for e in expressions(load(path)))) for path in DASHBOARDS}
    assert {"alert_receiver_webhook_requests_total", "alert_receiver_webhook_rejected_total",
            "alert_receiver_ingest_duration_seconds_bucket", "alert_receiver_outbox_messages",
            "alert_receiver_outbox_oldest_pending_age_seconds", "alert_receiver_notifications_total",
            "alert_receiver_escalations_total", "alert_receiver_engine_tick_duration_seconds_bucket",
            "alert_receiver_alerting_pipeline_down", "alert_receiver_watchdog_last_seen_timestamp_seconds",
            "alert_receiver_reconcile_drift_total"} <= names["alert-receiver-health.json"]
    assert {"alert_receiver_open_alerts", "alert_receiver_escalations_total",
            "alert_receiver_time_to_acknowledge_seconds_bucket", "alert_receiver_time_to_resolve_seconds_bucket",
            "alert_receiver_time_to_acknowledge_seconds_count",
            "alert_receiver_time_to_resolve_seconds_sum"} <= names["alert-receiver-alerts.json"]
    by = " ".join(expressions(load(GRAFANA_DIR / "alert-receiver-alerts.json")))
    for label in ("level", "severity", "service"):
        assert f"sum by ({label})" in by, f"open alerts by {label}"


def test_metric_names_reads_promql_as_promtool_does() -> None:
    expr = ('histogram_quantile(0.9, sum by (le, job) (rate(foo_seconds_bucket{job=~"$job", le!="+Inf"}[$__rate_interval])))'
            ' / on (job) group_left (instance) max without (pod) (bar_total offset 5m) > bool 0'
            ' or time() - baz:recorded unless vector(1)')
    assert metric_names(expr) == {"foo_seconds_bucket", "bar_total", "baz:recorded"}
    assert metric_names('sum(x{a="rate(y)"})') == {"x"}


# --------------------------------------------------------------------------------------------------
# promtool


@pytest.mark.binaries
def test_every_expression_parses(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    exprs = [expr for path in DASHBOARDS for expr in expressions(load(path))]
    result = promtool_parse(promtool, exprs, tmp_path)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout, result.stdout


@pytest.mark.binaries
def test_a_broken_expression_does_not_parse(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    result = promtool_parse(promtool, ["sum by (code) (rate(alert_receiver_webhook_requests_total[$__rate_interval])"],
                            tmp_path)
    assert result.returncode != 0 and "unclosed left parenthesis" in result.stdout + result.stderr, result


# --------------------------------------------------------------------------------------------------
# A freshly started serve exposes every metric the dashboards name


@pytest.fixture(scope="module")
def fresh_exposition(tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("grafana-serve")
    config = tmp / "receiver.yml"
    config.write_text(yaml.safe_dump({
        "database": {"url": f"sqlite:///{tmp / 'receiver.db'}"},
        "channels": {"ops": {"type": "webhook", "url": "http://127.0.0.1:9/never"}},
        "routes": [{"levels": {"L1": ["ops"], "L2": ["ops"], "L3": ["ops"]}}],
    }))
    receiver = ReceiverProcess(config, workers=2, log_path=str(tmp / "receiver.log")).start()
    try:
        receiver.wait_ready(timeout=60)
        wanted = {m for path in DASHBOARDS for e in expressions(load(path)) for m in metric_names(e)}
        last: dict[str, str] = {}

        def complete() -> bool:
            last["text"] = requests.get(receiver.url + "/metrics", timeout=5).text
            return wanted <= exposed_names(last["text"])

        try:  # the engine child starts beside the web workers: its first tick may come a moment after ready
            wait_until(complete, timeout=30, interval=0.2, what="every dashboard metric in /metrics")
        except TimeoutError:
            pass  # the test below names what is missing
        return last["text"]
    finally:
        receiver.stop()


@pytest.mark.e2e
def test_every_metric_is_exposed_before_the_first_event(fresh_exposition: str) -> None:
    dashboards = {path.name: load(path) for path in DASHBOARDS}
    assert unexposed(dashboards, exposed_names(fresh_exposition)) == []
    # and the bounded label sets are there at 0, not absent
    families = {f.name: f for f in text_string_to_metric_families(fresh_exposition)}
    channels = {(s.labels["channel"], s.labels["result"]) for s in families["alert_receiver_notifications"].samples}
    assert channels >= {("ops", "sent"), ("ops", "retry"), ("ops", "dead")}
    levels = {s.labels["level"] for s in families["alert_receiver_open_alerts"].samples}
    assert levels == {"L1", "L2", "L3"}
    escalations = {(s.labels["from_level"], s.labels["to_level"]) for s in families["alert_receiver_escalations"].samples
                   if s.name.endswith("_total")}
    assert escalations == {("L3", "L2"), ("L2", "L1"), ("L3", "L1")}


@pytest.mark.e2e
def test_a_dashboard_naming_a_missing_metric_fails_the_check(fresh_exposition: str) -> None:
    dashboards = {path.name: load(path) for path in DASHBOARDS}
    doctored = copy.deepcopy(dashboards["alert-receiver-health.json"])
    target = next(t for p in panels(doctored) for t in p.get("targets", []))
    target["expr"] = 'sum(rate(alert_receiver_no_such_metric_total{job=~"$job"}[$__rate_interval]))'
    problems = unexposed({"doctored": doctored}, exposed_names(fresh_exposition))
    assert problems == [f"doctored: alert_receiver_no_such_metric_total in {target['expr']}"]
