"""Pure presentation for the dashboard: durations in words, what an alert waits for next, which URLs may be links.

No Flask, no database: the views pass in the store's dicts (times as ISO strings, as the API answers) and `now`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Callable, Mapping
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
    muted = parse_iso(alert.get("muted_until"))
    if muted is not None and muted > now:  # engine/mutes.py: nothing is sent, the clock waits
        return NextStep(f"muted until {clock_time(alert['muted_until'])}; tells {alert.get('level')} again {when}",
                        left, False)
    if at is None:
        return NextStep("nothing scheduled", None, False)
    if alert.get("level") == "L1":
        return NextStep(f"repeats {when}", left, False)
    up = {"L3": "L2", "L2": "L1"}.get(alert.get("level") or "", "?")
    return NextStep(f"escalates to {up} {when}", left, False)


@dataclasses.dataclass(frozen=True)
class SlaLeft:
    text: str  # e.g. "SLA: acknowledge in 3m 12s · resolve in 28m 12s"
    breached: bool  # a target of the current level is missed


def sla_left(alert: Mapping[str, Any], now: dt.datetime, target: Any) -> SlaLeft | None:
    """The time left before each SLA target of an unacknowledged occurrence's level (`target`: its SlaTarget,
    from level_entered_at), or that it is breached; None without targets, or when acknowledged, muted (the clock
    waits) or never escalated."""
    entered = parse_iso(alert.get("level_entered_at"))
    if (target is None or entered is None or alert.get("acked_at") or alert.get("muted_until")
            or not alert.get("escalate", True) or alert.get("status", "firing") != "firing"):
        return None
    parts, breached = [], False
    for name, word, missed in (("ack", "acknowledge", "acknowledged"), ("resolve", "resolve", "resolved")):
        within = getattr(target, name, None)
        if within is None:
            continue
        left = (entered + within - now).total_seconds()
        if alert.get(f"sla_{name}_breached_at") or left <= 0:
            breached = True
            parts.append(f"not {missed} within {duration(within.total_seconds())}")
        else:
            parts.append(f"{word} in {duration(left)}")
    if not parts:
        return None
    return SlaLeft(("SLA breached: " if breached else "SLA: ") + " · ".join(parts), breached)


def sla_columns(sla: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(level, target) pairs the Statistics page shows: configured, or with occurrences counted."""
    return [(level, target) for level in LEVELS for target, b in sla[level].items()
            if b["target_seconds"] is not None or any(b[k] for k in ("met", "breached", "pending", "ended"))]


@dataclasses.dataclass(frozen=True)
class NowRow:
    alert: Mapping[str, Any]
    at_level_seconds: float
    next: NextStep
    extra_labels: list[tuple[str, str]]  # the labels beyond alertname, severity and service
    sla: SlaLeft | None = None


def now_rows(alerts: list[Mapping[str, Any]], now: dt.datetime,
             sla: Callable[[str | None, str | None], Any] | None = None) -> list[NowRow]:
    """The firing occurrences of one level as the Now page lists them: unacknowledged first, soonest next step
    first. `sla(route, level)`: the SLA targets an occurrence is held to (config/sla_targets.lookup)."""
    rows = []
    for alert in alerts:
        entered = parse_iso(alert.get("level_entered_at")) or parse_iso(alert.get("received_at")) or now
        target = sla(alert.get("route"), alert.get("level")) if sla else None
        rows.append(NowRow(alert, (now - entered).total_seconds(), next_step(alert, now),
                           [(k, v) for k, v in sorted((alert.get("labels") or {}).items())
                            if k not in ("alertname", "severity", "service")], sla_left(alert, now, target)))
    far = float("inf")
    rows.sort(key=lambda r: (r.next.stopped, r.next.seconds if r.next.seconds is not None else far,
                             -int(r.alert["id"])))
    return rows


_SOURCE_WORDS = {"rotation": "on call by rotation", "override": "on call by override", "person": "paged by name"}


def _paged(details: Mapping[str, Any]) -> str:
    """` (alice, on call by override)` for a message that paged a person; ` (schedule:primary-db)` before any
    attempt resolved one; "" for a plain channel's."""
    if details.get("person"):
        source = _SOURCE_WORDS.get(details.get("person_source") or "", details.get("person_source") or "")
        return f" ({details['person']}" + (f", {source})" if source else ")")
    return f" ({details['target']})" if details.get("target") else ""


def timeline_summary(entry: Mapping[str, Any]) -> str:
    """One line for a timeline entry: what happened, in words."""
    kind = entry.get("kind")
    details = entry.get("details") or {}
    if kind == "notified":
        return (f"{details.get('kind', 'message')} to {details.get('channel', '?')}{_paged(details)}: "
                f"{details.get('status', '?')} after {details.get('attempts', 0)} attempt(s)")
    if kind == "nobody_on_call":
        who = details.get("schedule") or details.get("person") or "?"
        return (f"nobody to page for {who} via {', '.join(details.get('channels') or []) or '?'}: "
                f"{details.get('reason') or 'nobody on call'}; {details.get('then') or 'no fallback'}")
    if kind == "escalated":
        return f"escalated {entry.get('from_level') or '?'} → {entry.get('to_level') or '?'}"
    if kind == "sla_breached":
        missed = {"ack": "acknowledged", "resolve": "resolved"}.get(details.get("target"), "?")
        within = details.get("target_seconds")
        return (f"SLA breached: not {missed} within {duration(within) if within is not None else '?'} "
                f"at {details.get('level') or entry.get('to_level') or '?'}")
    if kind in ("muted", "unmuted"):
        return _mute_summary(kind, details)
    if kind == "repeated":
        return f"repeated at {entry.get('to_level') or entry.get('from_level') or 'L1'}"
    if kind == "acked":
        ttl = details.get("ttl_seconds")
        return "acknowledged" + (f" for {duration(ttl)}" if ttl else "")
    return {"received": "received", "resolved": "resolved", "unacked": "acknowledgement undone",
            "ack_expired": "acknowledgement expired", "commented": "comment"}.get(kind or "", kind or "event")


def _mute_summary(kind: str, details: Mapping[str, Any]) -> str:
    """`muted by maintenance window #3 until 2026-11-23 10:00:00 UTC`, `mute ended`, `unmuted: escalated by hand`."""
    if kind == "unmuted":
        return f"unmuted: {details['reason']}" if details.get("reason") else "mute ended: told again"
    if details.get("reason") == "maintenance":
        by = f"maintenance window #{details.get('window', '?')}"
    else:
        by = f"time interval {details.get('interval', '?')}"
    return f"muted by {by} until {clock_time(details.get('until'))}"
