"""Words every channel shares: the headline of a message, the context its templates get, the minimal message
sent when a template fails, and cutting text to a provider's limit. Pure functions, no I/O.

render.py builds on these (render may import channels, never the reverse), so a channel can ask for the
template context without importing the renderer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from receiver.domain import Message, MessageAlert

ELLIPSIS = "…"

# What each notification kind says in a headline.
KIND_WORDS = {
    "firing": "FIRING",
    "escalated": "ESCALATED",
    "repeat": "REPEAT",
    "acknowledged": "ACKNOWLEDGED",
    "resolved": "RESOLVED",
    "sla_ack_breached": "ACK SLA BREACHED",
    "sla_resolve_breached": "RESOLVE SLA BREACHED",
    "update": "UPDATE",
}

# Labels that identify an alert's source, in the order a person looks for them.
IDENTIFYING_LABELS = ("instance", "service", "job", "team", "namespace", "pod")


def cut(text: str, limit: int, *, marker: str = ELLIPSIS) -> str:
    """`text` shortened to at most `limit` characters, ending in `marker` when something was cut."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    if limit <= len(marker):
        return text[:limit]
    return text[: limit - len(marker)].rstrip() + marker


def one_line(text: str) -> str:
    """Collapse whitespace (newlines included) to single spaces: for subjects, SMS and log lines."""
    return " ".join(text.split())


def iso(value: dt.datetime | None) -> str | None:
    """ISO-8601 in UTC with a Z and microseconds always present (a fixed width is easier on machines)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def human_duration(delta: dt.timedelta) -> str:
    """The two largest units of a duration: "45s", "5m", "1h30m", "2d3h". Negative durations read as 0s."""
    seconds = max(0, int(delta.total_seconds()))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count or (unit == "s" and not parts):
            parts.append(f"{count}{unit}")
    return "".join(parts[:2])


def alert_names(alerts: tuple[MessageAlert, ...]) -> list[str]:
    """Distinct alertnames, first seen first."""
    return list(dict.fromkeys(a.alertname for a in alerts))


def headline(message: Message) -> str:
    """`[L1 FIRING] HighCPU (3 alerts)`; several alertnames read `HighCPU +2 others (5 alerts)`."""
    names = alert_names(message.alerts)
    name = names[0] if names else "no alerts"
    if len(names) > 1:
        name += f" +{len(names) - 1} other" + ("s" if len(names) > 2 else "")
    count = len(message.alerts)
    word = KIND_WORDS.get(message.kind, message.kind.upper())
    if message.digest_groups:  # several groups' repeats in one message (channels/chat.py)
        name = f"{message.digest_groups} groups still firing: {name}"
    return f"[{message.level} {word}] {name} ({count} alert{'s' if count != 1 else ''})"


def source_of(alert: MessageAlert) -> str:
    """Where an alert comes from, for a person: `instance` or the first identifying label present."""
    for name in IDENTIFYING_LABELS:
        if alert.labels.get(name):
            return alert.labels[name]
    return ""


def message_context(message: Message, **extra: Any) -> dict[str, Any]:
    """What every template gets: the message, the alerts it lists (`alerts`: all, or the first `summary_over`),
    `hidden` (how many it leaves out), counts, the headline and the links. `extra` adds per-template values,
    such as `alert` for templates rendered once per alert."""
    firing = message.firing_count
    return {
        "message": message,
        "kind": message.kind,
        "level": message.level,
        "alerts": message.shown,
        "total": len(message.alerts),
        "hidden": len(message.alerts) - len(message.shown),
        "summarised": message.summarised,
        "firing": firing,
        "resolved": len(message.alerts) - firing,
        "title": headline(message),
        "receiver_url": message.receiver_url,
        "external_url": message.external_url,
        "now": message.created_at,
        **extra,
    }


def minimal_alert_line(alert: MessageAlert) -> str:
    """`HighCPU on web-1:9100 — CPU above 90% https://…/alerts/1`: one alert in one line, for fallbacks."""
    where = source_of(alert)
    summary = alert.summary if alert.summary != alert.alertname else ""
    text = " ".join(p for p in (alert.alertname, f"on {where}" if where else "", f"— {summary}" if summary else "") if p)
    return one_line(text) + (f" {alert.url}" if alert.url else "")


def minimal_text(context: Mapping[str, Any]) -> str:
    """The plain text sent when a template fails: enough to act on, built without templates so that it cannot
    fail itself. A per-alert template (`alert` in the context) falls back to one line for that alert."""
    alert = context.get("alert")
    message = context.get("message")
    if isinstance(alert, MessageAlert):
        return minimal_alert_line(alert)
    if not isinstance(message, Message):
        return "alert-receiver notification (the template failed and no message was given)"
    lines = [headline(message)]
    lines += [f"- {minimal_alert_line(a)}" for a in message.shown]
    hidden = len(message.alerts) - len(message.shown)
    if hidden:
        lines.append(f"… and {hidden} more ({len(message.alerts)} alerts in all)")
    if message.receiver_url:
        lines.append(message.receiver_url)
    return "\n".join(lines)
