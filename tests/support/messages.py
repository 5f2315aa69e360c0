"""Factories for what channels are given: make_alert(**kw) → MessageAlert, make_message(**kw) → Message, and
messages built from the genuine Alertmanager 0.25 captures (tests/support/fixtures.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from receiver.domain import Message, MessageAlert
from receiver.payload import parse

from .fixtures import raw

T0 = dt.datetime(2026, 11, 23, 9, 0, 0, tzinfo=dt.timezone.utc)
RECEIVER_URL = "https://alerts.example.org"
LEVEL_BY_SEVERITY = {"critical": "L1", "warning": "L2", "info": "L3"}


def make_alert(id: int = 1, **kw: Any) -> MessageAlert:
    """A firing L1 HighCPUUsage alert (the labels and annotations of capture a_single_firing) with every link;
    any field can be replaced. `labels`/`annotations` given replace the defaults whole."""
    labels = kw.pop("labels", None) or {
        "alertname": kw.get("alertname", "HighCPUUsage"), "instance": f"api-gw-{id}.internal:9100",
        "job": "node", "service": "api-gateway", "severity": kw.get("severity", "critical"), "team": "platform"}
    values: dict[str, Any] = dict(
        id=id,
        fingerprint=f"{id:016x}",
        alertname=labels.get("alertname", "HighCPUUsage"),
        status="firing",
        level=LEVEL_BY_SEVERITY.get(labels.get("severity", ""), "L3"),
        severity=labels.get("severity", ""),
        labels=labels,
        annotations={"summary": f"CPU usage above 90% on api-gw-{id}",
                     "description": "CPU usage has been above 90% for more than 5 minutes."},
        starts_at=T0 - dt.timedelta(minutes=12),
        ends_at=None,
        generator_url="http://prometheus.example.org/graph?g0.expr=cpu%3E0.9&g0.tab=1",
        url=f"{RECEIVER_URL}/alerts/{id}",
        ack_url=f"{RECEIVER_URL}/a/token-{id}",
    )
    values.update(kw)
    return MessageAlert(**values)


def make_message(alerts: int | tuple[MessageAlert, ...] | list[MessageAlert] = 1, **kw: Any) -> Message:
    """A firing L1 message of `alerts` (a count of make_alert()s, or the alerts themselves)."""
    if isinstance(alerts, int):
        alerts = tuple(make_alert(i + 1) for i in range(alerts))
    values: dict[str, Any] = dict(
        notification_id=7,
        channel="test",
        kind="firing",
        level="L1",
        group_key='{}:{alertname="HighCPUUsage", service="api-gateway"}',
        alerts=tuple(alerts),
        created_at=T0,
        receiver_url=RECEIVER_URL,
        external_url="http://alertmanager.example.org",
    )
    values.update(kw)
    return Message(**values)


def message_from_capture(name: str, **kw: Any) -> Message:
    """A message carrying every alert of the raw capture `name`, as the engine would build it (ids from 1)."""
    payload = parse(raw(name))
    alerts = []
    for i, alert in enumerate(payload.alerts, start=1):
        severity = alert.labels.get("severity", "")
        alerts.append(MessageAlert(
            id=i, fingerprint=alert.fingerprint, alertname=alert.labels.get("alertname", ""),
            status=alert.status.value, level=LEVEL_BY_SEVERITY.get(severity, "L3"), severity=severity,
            labels=alert.labels, annotations=alert.annotations, starts_at=alert.starts_at, ends_at=alert.ends_at,
            generator_url=alert.generator_url, url=f"{RECEIVER_URL}/alerts/{i}"))
    level = alerts[0].level if alerts else "L3"
    values: dict[str, Any] = dict(group_key=payload.group_key, level=level, external_url=payload.external_url)
    values.update(kw)
    return make_message(tuple(alerts), **values)


def replace(message: Message, **kw: Any) -> Message:
    return dataclasses.replace(message, **kw)
