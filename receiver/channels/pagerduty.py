"""The `pagerduty` channel: PagerDuty Events API v2, one event per occurrence.

A stable `dedup_key` per occurrence makes at-least-once delivery and L1 repeats harmless: PagerDuty folds a
trigger for an open incident into it, and its own escalation policy does the re-paging.
firing/escalated/repeat (and the SLA breach notices) → trigger, acknowledged → acknowledge, resolved → resolve.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from receiver.channels.base import Channel, RateLimit, post
from receiver.channels.markup import http_url, plain
from receiver.channels.text import cut, iso, one_line, source_of
from receiver.domain import Message, MessageAlert
from receiver.fields import FrozenModel, Integer, PositiveDuration, Secret, check_url

# https://developer.pagerduty.com/docs/events-api-v2/trigger-events/: summary at most 1,024 characters,
# an event at most 512 KB.
SUMMARY_LIMIT = 1024
EVENT_LIMIT = 512 * 1024
DETAIL_VALUE_LIMIT = 2048  # the first cut when an event is too large: long annotation and label values
SEVERITIES = ("critical", "error", "warning", "info")
LEVEL_SEVERITY = {"L1": "critical", "L2": "warning", "L3": "info"}
ACTIONS = {"firing": "trigger", "escalated": "trigger", "repeat": "trigger",
           "acknowledged": "acknowledge", "resolved": "resolve",
           # An SLA breach notice: folded into the occurrence's open incident (same dedup_key), its status kept.
           "sla_ack_breached": "trigger", "sla_resolve_breached": "trigger"}

# https://developer.pagerduty.com/docs/events-api-v2/overview/#response-codes--retry-logic: 202 accepted,
# 400 invalid event (never retry), 429 throttled and 5xx retry. 429 and 5xx are retryable for every channel
# already: no extra retryable codes.
RETRYABLE_CODES: tuple[int, ...] = ()

_DEDUP_PREFIX = "alert-receiver/occurrence/"
_DEDUP_RE = re.compile(re.escape(_DEDUP_PREFIX) + r"([1-9][0-9]{0,18})")


def dedup_key(alert_id: int) -> str:
    """The dedup_key of an occurrence: the same for its trigger, acknowledge and resolve, and every retry."""
    return f"{_DEDUP_PREFIX}{alert_id}"


def alert_id_from_dedup_key(key: str) -> int | None:
    """The occurrence id in one of our dedup keys; None for keys we did not make."""
    match = _DEDUP_RE.fullmatch(key or "")
    return int(match.group(1)) if match else None


class PagerDutySettings(FrozenModel):
    type: Literal["pagerduty"]
    routing_key: Secret  # an integration key, usually 32 characters; only non-empty is checked
    url: str = "https://events.pagerduty.com/v2/enqueue"
    source: str | None = None  # payload.source; the alert's instance label when unset
    timeout: PositiveDuration = dt.timedelta(seconds=10)
    # PagerDuty accepts about 120 events per minute per routing key.
    rate_limit_per_minute: Annotated[Integer, Field(gt=0)] = 120
    # The secret of a PagerDuty V3 webhook subscription: lets POST /webhooks/pagerduty mirror acks and
    # resolutions made in PagerDuty (signatures are checked against it).
    webhook_secret: Secret | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)


def severity_of(alert: MessageAlert, level: str) -> str:
    """The alert's severity label when PagerDuty knows it, else from the level."""
    if alert.severity in SEVERITIES:
        return alert.severity
    return LEVEL_SEVERITY.get(level, "info")


def _cut_values(node: Any, limit: int) -> Any:
    if isinstance(node, dict):
        return {k: _cut_values(v, limit) for k, v in node.items()}
    if isinstance(node, str):
        return cut(node, limit)
    return node


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def fit(event: dict[str, Any], limit: int = EVENT_LIMIT) -> bytes:
    """The event as bytes under `limit`: long custom_details values are cut first, then custom_details go."""
    body = encode(event)
    if len(body) <= limit or "payload" not in event:
        return body
    payload = event["payload"]
    details = payload.get("custom_details", {})
    for value_limit in (DETAIL_VALUE_LIMIT, 256):
        payload["custom_details"] = _cut_values(details, value_limit) | {"cut": "values cut: event over 512 KB"}
        body = encode(event)
        if len(body) <= limit:
            return body
    payload["custom_details"] = {"cut": "details left out: event over 512 KB"}
    return encode(event)


class PagerDutyChannel(Channel):
    type = "pagerduty"
    settings: PagerDutySettings

    @property
    def per_alert(self) -> bool:
        return True

    @property
    def rate_limit(self) -> RateLimit:
        return RateLimit(count=self.settings.rate_limit_per_minute, per=60.0)

    def event(self, message: Message, alert: MessageAlert) -> dict[str, Any]:
        action = ACTIONS[message.kind]
        event: dict[str, Any] = {
            "routing_key": self.settings.routing_key.reveal(),
            "dedup_key": dedup_key(alert.id),
            "event_action": action,
        }
        if action != "trigger":
            return event  # acknowledge and resolve take nothing else
        # The fields PagerDuty shows are plain text: control characters out. custom_details are data, kept whole.
        summary = one_line(plain(self.renderer.render_alert("pagerduty/alert_summary.j2", message, alert)))
        source = self.settings.source or alert.labels.get("instance") or source_of(alert) or "alert-receiver"
        event["payload"] = {
            "summary": cut(summary or plain(alert.alertname), SUMMARY_LIMIT),
            "source": plain(source),
            "severity": severity_of(alert, message.level),
            "timestamp": iso(alert.starts_at),
            "class": plain(alert.alertname),
            "custom_details": {
                "level": alert.level,
                "kind": message.kind,
                "group_key": message.group_key,
                "labels": dict(alert.labels),
                "annotations": dict(alert.annotations),
            },
        }
        if message.recipient is not None:  # the person a route pages through this channel: name only
            event["payload"]["custom_details"]["recipient"] = message.recipient.name
        if alert.labels.get("service"):
            event["payload"]["component"] = plain(alert.labels["service"])
        if alert.labels.get("team"):
            event["payload"]["group"] = plain(alert.labels["team"])
        event["client"] = "alert-receiver"
        if http_url(message.receiver_url):
            event["client_url"] = http_url(message.receiver_url)
        # Links only to http(s): PagerDuty's pages make them clickable, and javascript: must not be.
        candidates = [(alert.generator_url, "Prometheus: the alert's expression"),
                      (alert.url, "alert-receiver: the alert's timeline"),
                      (alert.annotations.get("runbook_url"), "Runbook")]
        links = [{"href": http_url(href), "text": text} for href, text in candidates if http_url(href)]
        if links:
            event["links"] = links
        return event

    def send(self, message: Message) -> None:
        # One alert per message for a per_alert channel; more are sent one event each all the same.
        for alert in message.alerts:
            post(self.http, self.settings.url, what="pagerduty events", timeout=self.settings.timeout,
                 retryable_codes=RETRYABLE_CODES, secrets=[self.settings.routing_key.reveal()],
                 data=fit(self.event(message, alert)),
                 headers={"Content-Type": "application/json"})
