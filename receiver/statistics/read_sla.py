"""SLA compliance over a period (`compliance`): per level and target (ack, resolve), overall and per service — the
`sla` key of GET /api/v1/stats/summary, the daily report, `alert-receiver stats summary` and the dashboard.

Definitions (docs/statistics.md documents them; tests/stats/test_sla_compliance.py recounts them by hand):
- the population of level X: the period's occurrences (the summary's filters) that were at X at some time (their
  first level, an escalation to X, or their level now) on a route with a target at X (routes[].sla over sla:, a
  removed route as the default route); never occurrences of `escalate: false` routes;
- each is exactly one of, per target: `breached` (the engine recorded a breach of the target at X: an
  `sla_breached` event), else `met` (acknowledged while at X, resp. resolved while at X), else `pending` (firing
  at X now, for ack unacknowledged), else `ended` (its time at X ended without either: escalated before the
  target, resolved unacknowledged, …);
- `percent` = met / (met + breached) × 100, null when both are 0; `target_seconds` is the default route's target
  (an occurrence on a route with its own target is judged by that one).

Where it comes from: each occurrence carries `sla_flags` (config/sla_targets.py: the levels it was at, acknowledged
at, breached at), kept by ingest, escalation, ack and the breach pass as they happen, so that this is one GROUP BY
over the period's occurrences, never a scan of their events. As the rest of the summary (read_summary.py), the
whole hours and days of the period come from pre-aggregates (`alert_stats_sla`, write_aggregates.py: the same
GROUP BY per hour over settled occurrences, whose flags, level and acks no longer change) and the rest — edge
hours, firing, resolved after the watermark — from raw rows; a filter the aggregates cannot answer reads raw
rows only. Both give rows of the same keys with a count, so the result is the raw one exactly. The grouped rows
come back to Python, which applies each route's targets. An occurrence from before the flags (all zero) was at
its level now, and acknowledged at it if ever acknowledged. The rollups keep no SLA (days that retention rolled
up count no occurrence here).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..config import Config
from ..config.sla_targets import ACKED, BREACHED, TARGETS, VISITED, flag, route_targets
from ..store.models import Alert, AlertStatsSla
from ..store.queries import AlertFilter, where_clauses
from . import read_aggregates as reads
from .read_summary import aggregable, raw_where

LEVELS = ("L1", "L2", "L3")
OUTCOMES = ("met", "breached", "pending", "ended")

_alerts = Alert.__table__
_sla = AlertStatsSla.__table__


def _visited(t, levels: set[str]) -> list:
    """e.g. no L3 target: an occurrence only ever at L3 counts nowhere, left out in SQL (measured: ½ the time)."""
    if levels == set(LEVELS):
        return []
    mask = sum(flag(x, VISITED) for x in levels)
    return [sa.or_(t.sla_flags.op("&")(mask) != 0, t.level.in_(sorted(levels)))]


def _grouped(conn: Connection, f: AlertFilter, levels: set[str]) -> list[Any]:
    """The period's occurrences that were at one of `levels` (those with a target on some route), counted per
    route, service, status, level now, ack and flags: aggregate rows for what the plan covers, raw rows for the
    rest (a key may come from both: the caller adds them up)."""
    a, s = _alerts.c, _sla.c
    plan = reads.plan(conn, f.since, f.until) if aggregable(f, allowed=("services", "severities", "levels")) else None
    keys = [a.route, a.service, a.status, a.level, (a.acked_at.is_(None)).label("unacked"),
            (a.first_acked_at.is_not(None)).label("ever_acked"), a.sla_flags]
    where = [*(where_clauses(f) if plan is None else raw_where(conn, f, plan)), a.escalate, *_visited(a, levels)]
    rows = list(conn.execute(sa.select(*keys, sa.func.count().label("n")).where(*where).group_by(*keys)))
    if plan is not None:  # settled occurrences (all resolved: no status column) of `escalate` routes only
        keys = [s.route, s.service, s.level, s.unacked, s.ever_acked, s.sla_flags]
        rows += conn.execute(
            sa.select(*keys, sa.literal_column("'resolved'").label("status"), sa.func.sum(s.occurrences).label("n"))
            .where(*reads.sla_where(plan, f.services, f.severities, f.levels), *_visited(s, levels)).group_by(*keys))
    return rows


def outcome(flags: int, row: Any, level: str, target: str) -> str:
    """What one occurrence's time at `level` came to for `target` (the definitions above)."""
    if flags & flag(level, BREACHED[target]):
        return "breached"
    here = row.level == level
    if target == "ack":
        if flags & flag(level, ACKED):
            return "met"
        return "pending" if here and row.status == "firing" and row.unacked else "ended"
    if here and row.status == "resolved":
        return "met"
    return "pending" if here and row.status == "firing" else "ended"


def _flags(row: Any) -> int:
    flags = int(row.sla_flags or 0) | flag(row.level, VISITED)
    if not row.sla_flags and row.ever_acked:  # from before the flags: the level never changed since its ack
        flags |= flag(row.level, ACKED)
    return flags


def _blank(seconds: float | None) -> dict[str, Any]:
    return {"target_seconds": seconds, **dict.fromkeys(OUTCOMES, 0), "percent": None}


def _levels(defaults) -> dict[str, dict[str, dict[str, Any]]]:
    return {x: {t: _blank(None if (d := defaults[x].get(t)) is None else d.total_seconds()) for t in TARGETS}
            for x in LEVELS}


def _percent(block: dict[str, Any]) -> None:
    judged = block["met"] + block["breached"]
    block["percent"] = round(block["met"] / judged * 100, 2) if judged else None


def compliance(conn: Connection, f: AlertFilter, config: Config) -> dict[str, Any]:
    """{"L1": {"ack": {target_seconds, met, breached, pending, ended, percent}, "resolve": …}, "L2": …, "L3": …,
    "by_service": {service: {"L1": …, "L2": …, "L3": …}}}."""
    by_route, default = route_targets(config.resolved_routes())
    defaults = {x.value: t for x, t in default.items()}
    total = _levels(defaults)
    services: dict[str, dict[str, dict[str, dict[str, Any]]]] = defaultdict(lambda: _levels(defaults))
    levels = {x.value for targets in (*by_route.values(), default) for x, t in targets.items()
              if any(t.get(k) is not None for k in TARGETS)}
    for row in _grouped(conn, f, levels) if levels else ():
        targets = by_route.get(row.route, default)
        flags = _flags(row)
        for level, target in targets.items():
            x = level.value
            if not flags & flag(x, VISITED):
                continue
            for t in TARGETS:
                if target.get(t) is None:
                    continue
                result = outcome(flags, row, x, t)
                total[x][t][result] += int(row.n)
                services[row.service][x][t][result] += int(row.n)
    for levels in (total, *services.values()):
        for x in LEVELS:
            for t in TARGETS:
                _percent(levels[x][t])
    return {**total, "by_service": {name: services[name] for name in sorted(services)}}
