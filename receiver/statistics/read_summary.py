"""Statistics over a period: counts, MTTA/MTTR (mean, min, p50, p90, max), escalations, notification outcomes (`summary`),
counts per time slot (`slot_counts`, for trends) and escalations by level pair. The top lists, noisy and flapping
alerts are in read_top.py, which shares this module's percentiles, source names and `aggregable`.

Where the numbers come from (write_aggregates.py explains the tables): the whole hours of a period from the
pre-aggregates, everything they do not hold (the partial hours at the edges, occurrences still firing or resolved
after the watermark) from raw rows, merged; a filter the aggregates cannot answer (label matchers, `acked`, …)
reads raw rows only. `sources` reports which were used. Counts, sums, means, min and max are exact either way;
MTTA/MTTR percentiles are exact, or within 0.5 % from sketches for large unfiltered periods, whatever the filter
(read_percentiles.py: each distribution's `method` says which).

Definitions (docs/statistics.md documents them; the tests recompute them independently):
- an occurrence is in a period when its `starts_at` is in [since, until);
- MTTA: first notification sent → first acknowledgement (`first_notified_at` → `first_acked_at`), for occurrences
  that have both; an ack before the first send counts as 0;
- MTTR: `starts_at` → resolution (Alertmanager's `endsAt`, else the time the receiver resolved it), resolved only;
- notifications: per occurrence, the messages about it (a message about k occurrences counts once for each, as in
  the rollups), by the message's status;
- exact percentiles interpolate linearly between the closest ranks (numpy's default, PostgreSQL's percentile_cont).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..store.models import Alert, AlertEvent, Notification, NotificationItem
from ..store.queries import AlertFilter, where_clauses
from . import read_aggregates as reads
from . import read_percentiles as percentiles
from .write_aggregates import mtta_expr, mtta_present, mttr_expr, mttr_present

_alerts = Alert.__table__
_messages = Notification.__table__
_items = NotificationItem.__table__


# --- durations and percentiles: read_percentiles.py (exact, sketch or histogram) ----------------------------

interpolate, Distribution, distribution = percentiles.interpolate, percentiles.Distribution, percentiles.distribution


# --- where the numbers come from ---------------------------------------------------------------------------

ALERTS, AGGREGATES, ROLLUPS = "alerts", "aggregates", "rollups"


def source_name(sources: set[str]) -> str:
    """`alerts`, `aggregates+alerts` when pre-aggregates answered part of it, `rollups+…` when the period reaches
    days that retention rolled up."""
    return "+".join(name for name in (ROLLUPS, AGGREGATES, ALERTS) if name in sources) or ALERTS


def _rolled(conn: Connection, f: AlertFilter, group_by: str | None = None) -> reads.RollupPart | None:
    """The rolled-up days of the period, when the rollups can answer every filter (they hold resolved
    occurrences per day, service, alertname and severity)."""
    if not aggregable(f, allowed=("services", "severities", "alertnames")):
        return None
    return reads.read_rollups(conn, f.since, f.until, services=f.services, severities=f.severities,
                                   alertnames=f.alertnames, group_by=group_by)


def _period_free(f: AlertFilter) -> AlertFilter:
    return dataclasses.replace(f, since=None, until=None)


def aggregable(f: AlertFilter, *, allowed: Sequence[str]) -> bool:
    """True when the aggregates can answer every filter of `f` (besides the period); `allowed` names the
    dimensions the table has. They hold resolved occurrences only: a `firing` filter is all raw."""
    if f.since is None or f.until is None or f.matchers or f.acked is not None or f.fingerprint or f.group_id:
        return False
    if f.status not in (None, "resolved"):
        return False
    dims = {"services": f.services, "severities": f.severities, "levels": f.levels, "alertnames": f.alertnames}
    return all(name in allowed or not values for name, values in dims.items())


def raw_where(conn: Connection, f: AlertFilter, plan: reads.Plan) -> list:
    return where_clauses(_period_free(f)) + [_alerts.c.id.in_(plan.raw_ids(conn))]


# --- summary -----------------------------------------------------------------------------------------------


_GROUP_COUNTERS = ("occurrences", "acked", "escalated", "escalations")


def _raw_groups(conn: Connection, where: Sequence[Any]) -> dict[tuple[str, str, str, str], dict[str, int]]:
    c = _alerts.c
    escalated = sa.case((c.escalation_count > 0, 1), else_=0)
    acked = sa.case((c.first_acked_at.is_not(None), 1), else_=0)
    rows = conn.execute(
        sa.select(c.severity, c.level, c.status, c.service, sa.func.count(), sa.func.sum(acked),
                  sa.func.sum(escalated), sa.func.sum(c.escalation_count))
        .where(*where).group_by(c.severity, c.level, c.status, c.service))
    return {(r[0], r[1], r[2], r[3]): dict(zip(_GROUP_COUNTERS, (int(v or 0) for v in r[4:]))) for r in rows}


def summary(conn: Connection, f: AlertFilter, sources: set[str] | None = None) -> dict[str, Any]:
    sources = sources if sources is not None else set()
    sources.add(ALERTS)
    plan = None
    if aggregable(f, allowed=("services", "severities", "levels")):
        plan = reads.plan(conn, f.since, f.until)
    rolled = _rolled(conn, f)
    if plan is None and rolled is None:
        where = where_clauses(f)
        groups = _raw_groups(conn, where)
        mtta = distribution(conn, mtta_expr(conn), mtta_present(), where)
        mttr = distribution(conn, mttr_expr(conn), mttr_present(), where)
        notifications = _notification_statuses(conn, where)
    else:
        parts = []
        if plan is not None:
            sources.add(AGGREGATES)
            parts.append(reads.read_stats(conn, plan, reads.stats_filters(f.services, f.severities, f.levels),
                                          histograms=rolled is not None))
        if rolled is not None:
            sources.add(ROLLUPS)
            parts.append(rolled.stats)
        where = where_clauses(f) if plan is None else raw_where(conn, f, plan)
        groups = _raw_groups(conn, where)
        for part in parts:
            for (severity, level, service), counts in part.groups.items():
                g = groups.setdefault((severity, level, "resolved", service), dict.fromkeys(_GROUP_COUNTERS, 0))
                for name in _GROUP_COUNTERS:
                    g[name] += counts[name]
        mtta, mttr = percentiles.merged(conn, f, plan, parts, where, rolled=rolled is not None)
        notifications = _notification_statuses(conn, where)
        for part in parts:
            for status, n in part.notifications.items():
                notifications[status] = notifications.get(status, 0) + n
    by: dict[str, dict[str, int]] = {k: defaultdict(int) for k in ("severity", "level", "status", "service")}
    total = escalated_n = escalations = acked_n = 0
    if rolled is not None:  # counted per dimension, not jointly: add them dimension by dimension
        total, acked_n = rolled.occurrences, rolled.acked
        escalated_n, escalations = rolled.escalated, rolled.escalations
        by["status"]["resolved"] += rolled.occurrences
        for key, counts in (("severity", rolled.by_severity), ("level", rolled.by_level),
                            ("service", rolled.by_service)):
            for value, n in counts.items():
                by[key][value] += n
    for (severity, level, status, service), g in groups.items():
        n = g["occurrences"]
        if not n:
            continue
        total += n
        escalated_n += g["escalated"]
        escalations += g["escalations"]
        acked_n += g["acked"]
        for key, value in (("severity", severity), ("level", level), ("status", status), ("service", service)):
            by[key][value] += n
    notifications = {k: v for k, v in notifications.items() if v}
    sent, dead = notifications.get("sent", 0), notifications.get("dead", 0)
    return {
        "total": total,
        "by_severity": dict(sorted(by["severity"].items())),
        "by_level": dict(sorted(by["level"].items())),
        "by_status": dict(sorted(by["status"].items())),
        "by_service": dict(sorted(by["service"].items(), key=lambda kv: (-kv[1], kv[0]))),
        "acked": acked_n,
        "mtta_seconds": mtta.as_dict(),
        "mttr_seconds": mttr.as_dict(),
        "escalations": {"count": escalations, "escalated_alerts": escalated_n,
                        "rate": round(escalated_n / total, 4) if total else None},
        "notifications": {"total": sum(notifications.values()), "by_status": dict(sorted(notifications.items())),
                          "failure_rate": round(dead / (sent + dead), 4) if sent + dead else None},
    }


def _notification_statuses(conn: Connection, where: Sequence[Any]) -> dict[str, int]:
    """Messages about the matching occurrences, by status (per occurrence: one (occurrence, message) pair each)."""
    alert_ids = sa.select(_alerts.c.id).where(*where)
    rows = conn.execute(
        sa.select(_messages.c.status, sa.func.count())
        .select_from(_messages.join(_items, _items.c.notification_id == _messages.c.id))
        .where(_items.c.alert_id.in_(alert_ids)).group_by(_messages.c.status))
    return {status: int(n) for status, n in rows}


# --- trends ------------------------------------------------------------------------------------------------

SLOT_SECONDS = 900  # every real time zone offset is a multiple of 15 minutes


def slot_counts(conn: Connection, f: AlertFilter, group_by: str | None, *,
                boundaries: Sequence[dt.datetime] = (), sources: set[str] | None = None) -> list[tuple[int, str, int]]:
    """(15-minute UTC slot number, group value, count) over the period. With `boundaries` (the trend's bucket
    starts) all on whole UTC hours, whole hours come from the aggregates (whole days too when all are UTC
    midnights): a bucket never splits an aggregated hour."""
    sources = sources if sources is not None else set()
    plan = None
    aligned = bool(boundaries) and all(b.astimezone(reads.UTC).minute == 0 and b.second == 0
                                       and b.microsecond == 0 for b in boundaries)
    if aligned and aggregable(f, allowed=("services", "severities", "levels")):
        days = all(b.astimezone(reads.UTC).hour == 0 for b in boundaries)
        plan = reads.plan(conn, f.since, f.until, days=days)
    counts: dict[tuple[int, str], int] = defaultdict(int)
    if aligned and all(b.astimezone(reads.UTC).hour == 0 for b in boundaries):  # UTC days: rollups can
        rolled = _rolled(conn, f, group_by)
        if rolled is not None:
            sources.add(ROLLUPS)
            for (day, key), n in rolled.by_day.items():
                counts[(int(day.timestamp()) // SLOT_SECONDS, key)] += n
    if plan is not None:
        sources.add(AGGREGATES)
        filters = reads.stats_filters(f.services, f.severities, f.levels)
        for (bucket, key), n in reads.read_slots(conn, plan, filters, group_by).items():
            counts[(int(bucket.timestamp()) // SLOT_SECONDS, key)] += n
    sources.add(ALERTS)
    c = _alerts.c
    if conn.dialect.name == "postgresql":
        slot = sa.cast(sa.func.floor(sa.extract("epoch", c.starts_at) / SLOT_SECONDS), sa.BigInteger)
    else:
        slot = sa.cast(sa.func.strftime("%s", c.starts_at), sa.Integer) / SLOT_SECONDS
    key = getattr(c, group_by) if group_by else sa.literal("all")
    where = where_clauses(f) if plan is None else raw_where(conn, f, plan)
    for s, k, n in conn.execute(sa.select(slot.label("slot"), key.label("key"), sa.func.count())
                                .where(*where).group_by(sa.text("slot"), sa.text("key"))):
        counts[(int(s), k)] += n
    return [(s, k, n) for (s, k), n in counts.items()]


# --- escalations by level pair -----------------------------------------------------------------------------


def escalations_between(conn: Connection, since: dt.datetime, until: dt.datetime) -> list[dict[str, Any]]:
    e = AlertEvent.__table__.c
    rows = conn.execute(sa.select(e.from_level, e.to_level, sa.func.count())
                        .where(e.kind == "escalated", e.at >= since, e.at < until)
                        .group_by(e.from_level, e.to_level).order_by(e.from_level, e.to_level))
    return [{"from": r[0], "to": r[1], "count": r[2]} for r in rows]
