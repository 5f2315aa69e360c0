"""PagerDuty Events v2: exact events per kind, a stable dedup_key per occurrence, severity and source rules,
and PagerDuty's size limits (summary 1,024 characters, event 512 KB)."""

from __future__ import annotations

import json

import pytest
from responses import matchers

from receiver.channels.pagerduty import alert_id_from_dedup_key, dedup_key, fit

from ..support.messages import make_alert, make_message
from .conftest import PD_KEY

URL = "https://events.pagerduty.com/v2/enqueue"


def sent(mock_http) -> list[dict]:
    return [json.loads(call.request.body) for call in mock_http.calls]


def test_the_exact_trigger(make_channel, mock_http):
    mock_http.post(URL, status=202, json={"status": "success", "dedup_key": "alert-receiver/occurrence/1"}, match=[
        matchers.header_matcher({"Content-Type": "application/json"}),
        matchers.json_params_matcher({
            "routing_key": PD_KEY,
            "dedup_key": "alert-receiver/occurrence/1",
            "event_action": "trigger",
            "payload": {
                "summary": "HighCPUUsage on api-gw-1.internal:9100: CPU usage above 90% on api-gw-1",
                "source": "api-gw-1.internal:9100",
                "severity": "critical",
                "timestamp": "2026-11-23T08:48:00.000000Z",
                "class": "HighCPUUsage",
                "component": "api-gateway",
                "group": "platform",
                "custom_details": {
                    "level": "L1", "kind": "firing",
                    "group_key": '{}:{alertname="HighCPUUsage", service="api-gateway"}',
                    "labels": {"alertname": "HighCPUUsage", "instance": "api-gw-1.internal:9100", "job": "node",
                               "service": "api-gateway", "severity": "critical", "team": "platform"},
                    "annotations": {"summary": "CPU usage above 90% on api-gw-1",
                                    "description": "CPU usage has been above 90% for more than 5 minutes."},
                },
            },
            "client": "alert-receiver",
            "client_url": "https://alerts.example.org",
            "links": [{"href": "http://prometheus.example.org/graph?g0.expr=cpu%3E0.9&g0.tab=1",
                       "text": "Prometheus: the alert's expression"},
                      {"href": "https://alerts.example.org/alerts/1", "text": "alert-receiver: the alert's timeline"}],
        }),
    ])
    make_channel("pagerduty").send(make_message())
    assert len(mock_http.calls) == 1


@pytest.mark.parametrize("kind,action", [("acknowledged", "acknowledge"), ("resolved", "resolve")])
def test_acknowledge_and_resolve_carry_only_the_key_and_action(make_channel, mock_http, kind, action):
    mock_http.post(URL, status=202, match=[matchers.json_params_matcher(
        {"routing_key": PD_KEY, "dedup_key": "alert-receiver/occurrence/42", "event_action": action})])
    make_channel("pagerduty").send(make_message((make_alert(42),), kind=kind))
    assert len(mock_http.calls) == 1


def test_every_trigger_kind_uses_the_same_dedup_key(make_channel, mock_http):
    mock_http.post(URL, status=202)
    channel = make_channel("pagerduty")
    for kind in ("firing", "escalated", "repeat", "repeat"):
        channel.send(make_message((make_alert(9),), kind=kind))
    assert {(e["event_action"], e["dedup_key"]) for e in sent(mock_http)} == {("trigger", "alert-receiver/occurrence/9")}


SEVERITIES = [
    ("critical", "L3", "critical"), ("error", "L3", "error"), ("warning", "L1", "warning"), ("info", "L1", "info"),
    ("page", "L1", "critical"), ("ticket", "L2", "warning"), ("", "L3", "info"), ("disaster", "L2", "warning"),
]


@pytest.mark.parametrize("severity,level,expected", SEVERITIES, ids=[f"{s or 'none'}-{lvl}" for s, lvl, _ in SEVERITIES])
def test_severity_from_label_else_level(make_channel, severity, level, expected):
    alert = make_alert(severity=severity, level=level)
    event = make_channel("pagerduty").event(make_message((alert,), level=level), alert)
    assert event["payload"]["severity"] == expected


SOURCES = [
    ({"source": "receiver"}, {"instance": "i-1", "service": "s"}, "receiver"),
    ({}, {"instance": "i-1", "service": "s"}, "i-1"),
    ({}, {"service": "s"}, "s"),
    ({}, {"mountpoint": "/"}, "alert-receiver"),
]


@pytest.mark.parametrize("settings,labels,expected", SOURCES, ids=["setting", "instance", "service", "default"])
def test_source(make_channel, settings, labels, expected):
    alert = make_alert(labels={"alertname": "X", **labels})
    event = make_channel("pagerduty", **settings).event(make_message((alert,)), alert)
    assert event["payload"]["source"] == expected


def test_summary_is_cut_to_1024_characters(make_channel):
    alert = make_alert(annotations={"summary": "word " * 1000})
    summary = make_channel("pagerduty").event(make_message((alert,)), alert)["payload"]["summary"]
    assert len(summary) == 1024 and summary.endswith("…")


def test_an_event_stays_under_512_kb(make_channel, mock_http):
    mock_http.post(URL, status=202)
    huge = make_alert(annotations={"summary": "disk full", "description": "x" * 600_000},
                      labels={"alertname": "Huge", "severity": "critical", "blob": "y" * 100_000})
    make_channel("pagerduty").send(make_message((huge,)))
    body = mock_http.calls[0].request.body
    assert len(body) <= 512 * 1024
    event = json.loads(body)
    assert event["payload"]["summary"] == "Huge: disk full" and event["payload"]["severity"] == "critical"
    assert event["payload"]["custom_details"]["annotations"]["description"].endswith("…")


def test_fit_drops_details_when_cutting_values_is_not_enough():
    event = {"routing_key": "k", "payload": {"summary": "s", "custom_details": {f"k{i}": "v" * 300 for i in range(3000)}}}
    body = fit(event)
    assert len(body) <= 512 * 1024
    assert json.loads(body)["payload"]["custom_details"] == {"cut": "details left out: event over 512 KB"}


def test_one_event_per_alert_even_if_given_several(make_channel, mock_http):
    mock_http.post(URL, status=202)
    make_channel("pagerduty").send(make_message(3))
    assert [e["dedup_key"] for e in sent(mock_http)] == [dedup_key(1), dedup_key(2), dedup_key(3)]


def test_channel_traits(make_channel):
    channel = make_channel("pagerduty", rate_limit_per_minute=60)
    assert channel.per_alert is True
    assert (channel.rate_limit.count, channel.rate_limit.per) == (60, 60.0)
    assert make_channel("pagerduty").rate_limit.count == 120


@pytest.mark.parametrize("alert_id", [1, 42, 2**62])
def test_dedup_key_round_trip(alert_id):
    key = dedup_key(alert_id)
    assert alert_id_from_dedup_key(key) == alert_id and len(key) <= 255


@pytest.mark.parametrize("key", ["", "42", "alert-receiver/occurrence/", "alert-receiver/occurrence/0",
                                 "alert-receiver/occurrence/01", "alert-receiver/occurrence/-1",
                                 "alert-receiver/occurrence/1x", "other/occurrence/1", "alert-receiver/occurrence/1 "])
def test_foreign_dedup_keys_name_no_alert(key):
    assert alert_id_from_dedup_key(key) is None
