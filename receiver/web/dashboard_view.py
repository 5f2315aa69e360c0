"""Pure presentation for the dashboard: durations in words, what an alert waits for next, which URLs may be links.

No Flask, no database: the views pass in the store's dicts (times as ISO strings, as the API answers) and `now`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Mapping
from urllib.parse import urlsplit

LEVELS = ("L1", "L2", "L3")


def parse_iso(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def duration(seconds: float | None) -> str:
    """`45s`, `4m 12s`, `3h 05m`, `2d 4h`: two units at most, for people."""
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {secs:02d}s"
    return f"{sign}{secs}s"


def clock_time(value: str | None) -> str:
    """An ISO time as `2026-11-23 09:00:05 UTC`."""
    when = parse_iso(value)
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if when else "–"


def link_url(url: str | None) -> str | None:
    """`url` if a browser may follow it from our page (http or https with a host), else None: a generatorURL or
    runbook annotation of `javascript:…` is shown as text, never as a link."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return url.strip() if parts.scheme.lower() in ("http", "https") and parts.netloc else None


@dataclasses.dataclass(frozen=True)
class NextStep:
    text: str  # e.g. "escalates to L2 in 4m 12s"
    seconds: float | None  # until it happens; None when nothing is scheduled
    stopped: bool  # acknowledged or never escalated: nothing will page anyone


def next_step(alert: Mapping[str, Any], now: dt.datetime) -> NextStep:
    """What the engine will do next to a firing occurrence, and when (its `next_action_at`)."""
    at = parse_iso(alert.get("next_action_at"))
    left = (at - now).total_seconds() if at else None
    when = "now" if left is not None and left <= 0 else f"in {duration(left)}"
    if alert.get("acked_at"):
        who = alert.get("acked_by") or "someone"
        if alert.get("ack_expires_at") and at:
            return NextStep(f"acknowledged by {who}; the ack expires {when}", left, True)
        return NextStep(f"acknowledged by {who}", None, True)
    if not alert.get("escalate", True):
        return NextStep("never escalated (escalate: false)", None, True)
    if at is None:
        return NextStep("nothing scheduled", None, False)
    if alert.get("level") == "L1":
        return NextStep(f"repeats {when}", left, False)
    up = {"L3": "L2", "L2": "L1"}.get(alert.get("level") or "", "?")
    return NextStep(f"escalates to {up} {when}", left, False)


@dataclasses.dataclass(frozen=True)
class NowRow:
    alert: Mapping[str, Any]
    at_level_seconds: float
    next: NextStep
    extra_labels: list[tuple[str, str]]  # the labels beyond alertname, severity and service


def now_rows(alerts: list[Mapping[str, Any]], now: dt.datetime) -> list[NowRow]:
    """The firing occurrences of one level as the Now page lists them: unacknowledged first, soonest next step
    first."""
    rows = []
    for alert in alerts:
        entered = parse_iso(alert.get("level_entered_at")) or parse_iso(alert.get("received_at")) or now
        rows.append(NowRow(alert, (now - entered).total_seconds(), next_step(alert, now),
                           [(k, v) for k, v in sorted((alert.get("labels") or {}).items())
                            if k not in ("alertname", "severity", "service")]))
    far = float("inf")
    rows.sort(key=lambda r: (r.next.stopped, r.next.seconds if r.next.seconds is not None else far,
                             -int(r.alert["id"])))
    return rows


def timeline_summary(entry: Mapping[str, Any]) -> str:
    """One line for a timeline entry: what happened, in words."""
    kind = entry.get("kind")
    details = entry.get("details") or {}
    if kind == "notified":
        return (f"{details.get('kind', 'message')} to {details.get('channel', '?')}: {details.get('status', '?')}"
                f" after {details.get('attempts', 0)} attempt(s)")
    if kind == "escalated":
        return f"escalated {entry.get('from_level') or '?'} → {entry.get('to_level') or '?'}"
    if kind == "repeated":
        return f"repeated at {entry.get('to_level') or entry.get('from_level') or 'L1'}"
    if kind == "acked":
        ttl = details.get("ttl_seconds")
        return "acknowledged" + (f" for {duration(ttl)}" if ttl else "")
    return {"received": "received", "resolved": "resolved", "unacked": "acknowledgement undone",
            "ack_expired": "acknowledgement expired", "commented": "comment"}.get(kind or "", kind or "event")
