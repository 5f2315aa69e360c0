"""Correlated occurrences: the same Alertmanager group at the same time, the same service or instance within a
time window, and manual links (table `correlations`, read in both directions).

Scores are in [0, 1]; an occurrence related in several ways is listed once, under its highest score, with every
reason. Each source is an index range bounded by `limit` (closest first), so a storm costs `limit` rows a source:

- group     1.0                          same `group_id` (Alertmanager groupKey) and firing periods that overlap
                                         (each widened by the window): the group persists across days, its old
                                         occurrences are not related
- instance  0.9 × (1 − d / (2·window))   same non-empty `instance`, starts d apart, d ≤ window → 0.9 … 0.45
- service   0.7 × (1 − d / (2·window))   same non-empty `service`, d ≤ window → 0.7 … 0.35
- manual    as stored (default 1.0)      recorded by POST /api/v1/correlations (write_correlations.py), with its
                                         type, actor and comment

Each related occurrence also says how its firing interval lies against this one's (an interval ends at endsAt, else
the receiver's resolution, else now): `relation` "overlapping" ("firing at the same time"), or "before" / "after"
with `gap_seconds` between the two intervals ("within 12 minutes before": it stopped firing 12 minutes or less
before this one started).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..store.models import Alert, Correlation
from ..store.queries import iso

_alerts = Alert.__table__
_links = Correlation.__table__

BASE = {"group": 1.0, "instance": 0.9, "service": 0.7}
SUMMARY = ("id", "fingerprint", "alertname", "severity", "service", "instance", "status", "level", "starts_at",
           "ends_at", "group_id")


def _seconds(conn: Connection, a, b):
    """|a − b| in seconds, as SQL."""
    if conn.dialect.name == "postgresql":
        return sa.func.abs(sa.extract("epoch", a - b))
    return sa.func.abs(sa.func.julianday(a) - sa.func.julianday(b)) * 86400.0


def _summary(row) -> dict[str, Any]:
    m = row._mapping
    return {k: (iso(m[k]) if isinstance(m[k], dt.datetime) else m[k]) for k in SUMMARY}


def related(conn: Connection, alert_id: int, *, window: dt.timedelta, limit: int,
            now: dt.datetime) -> list[dict[str, Any]] | None:
    """The occurrences related to `alert_id`, best first; None when it does not exist."""
    c = _alerts.c
    anchor = conn.execute(sa.select(_alerts).where(c.id == alert_id)).first()
    if anchor is None:
        return None
    cols = [c[k] for k in SUMMARY] + [c.resolved_at]
    found: dict[int, dict[str, Any]] = {}
    span = (anchor.starts_at, _end(anchor, now))

    def add(row, kind: str, score: float, reason: str, **extra) -> None:
        entry = found.setdefault(row.id, {"alert": _summary(row), "reasons": [],
                                          "distance": abs((row.starts_at - start).total_seconds()),
                                          **relation(span, (row.starts_at, _end(row, now)))})
        entry["reasons"].append({"type": kind, "score": round(score, 4), "reason": reason(entry["when"])
                                 if callable(reason) else reason, **extra})

    start = anchor.starts_at
    lo, hi = start - window, start + window
    distance = _seconds(conn, c.starts_at, sa.literal(start, c.starts_at.type)).label("d")
    if anchor.group_id:
        end = anchor.ends_at or anchor.resolved_at or now
        other_end = sa.func.coalesce(c.ends_at, c.resolved_at, sa.literal(now, c.starts_at.type))
        rows = conn.execute(sa.select(*cols, distance).where(
            c.group_id == anchor.group_id, c.id != alert_id,
            c.starts_at <= end + window, other_end >= start - window,
        ).order_by(sa.text("d"), c.id).limit(limit))
        for row in rows:
            add(row, "group", BASE["group"], lambda when: f"same Alertmanager group, {when}",
                seconds_apart=round(float(row.d), 3))
    for kind, value in (("instance", anchor.instance), ("service", anchor.service)):
        if not value:
            continue
        column = c.instance if kind == "instance" else c.service
        rows = conn.execute(sa.select(*cols, distance).where(
            column == value, c.id != alert_id, c.starts_at >= lo, c.starts_at <= hi,
        ).order_by(sa.text("d"), c.id).limit(limit))
        for row in rows:
            d = float(row.d)
            score = BASE[kind] * (1 - min(d, window.total_seconds()) / (2 * window.total_seconds()))
            add(row, kind, score, lambda when, kind=kind, value=value, d=d:
                f"same {kind} {value!r}, started {_human(d)} apart, {when}", seconds_apart=round(d, 3))
    for direction, mine, other in (("outgoing", _links.c.alert_id, _links.c.related_alert_id),
                                   ("incoming", _links.c.related_alert_id, _links.c.alert_id)):
        rows = conn.execute(
            sa.select(*cols, _links.c.id.label("link_id"), _links.c.type.label("link_type"),
                      _links.c.score.label("link_score"), _links.c.actor, _links.c.comment, _links.c.created_at)
            .select_from(_links.join(_alerts, c.id == other)).where(mine == alert_id)
            .order_by(_links.c.score.desc(), _links.c.id).limit(limit))
        for row in rows:
            add(row, row.link_type, float(row.link_score), "linked by hand", manual=True, link_id=row.link_id,
                direction=direction, actor=row.actor, comment=row.comment, created_at=iso(row.created_at))
    out = []
    for entry in found.values():
        entry["reasons"].sort(key=lambda r: -r["score"])
        best = entry["reasons"][0]
        out.append((-best["score"], entry["distance"], entry["alert"]["id"],
                    {"alert": entry["alert"], "type": best["type"], "score": best["score"], "reason": best["reason"],
                     "relation": entry["relation"], "gap_seconds": entry["gap_seconds"], "when": entry["when"],
                     "reasons": entry["reasons"]}))
    out.sort(key=lambda e: e[:3])
    return [e[3] for e in out[:limit]]


def _end(row, now: dt.datetime) -> dt.datetime:
    """Where an occurrence's firing interval ends: endsAt, the receiver's resolution, else now (never before it
    started)."""
    return row.ends_at or row.resolved_at or max(now, row.starts_at)


def relation(mine: tuple[dt.datetime, dt.datetime], other: tuple[dt.datetime, dt.datetime]) -> dict[str, Any]:
    """How the interval `other` lies against `mine` (each start, end): overlapping (touching counts), or before or
    after it with the gap between them, and the same in words."""
    if other[1] < mine[0]:
        kind, gap = "before", (mine[0] - other[1]).total_seconds()
    elif other[0] > mine[1]:
        kind, gap = "after", (other[0] - mine[1]).total_seconds()
    else:
        return {"relation": "overlapping", "gap_seconds": 0.0, "when": "firing at the same time"}
    return {"relation": kind, "gap_seconds": round(gap, 3), "when": f"within {_within(gap)} {kind}"}


def _within(seconds: float) -> str:
    """The gap rounded up to the unit it is read in: "within 12 minutes" for 11 min 20 s; hours from 2 hours on."""
    minutes = max(1, math.ceil(seconds / 60 - 1e-9))
    if minutes < 120:
        return f"{minutes} minute" + ("s" if minutes != 1 else "")
    hours = math.ceil(minutes / 60 - 1e-9)
    if hours < 48:
        return f"{hours} hours"
    return f"{math.ceil(hours / 24 - 1e-9)} days"


def _human(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
