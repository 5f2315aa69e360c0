"""Statistics over occurrences: counts, MTTA/MTTR (mean, p50, p90), escalations, notification outcomes, top and
noisy alerts, flapping, time buckets.

Where the numbers come from (store/aggregates.py explains the tables): the whole hours of a period from the
pre-aggregates, everything they do not hold (the partial hours at the edges, occurrences still firing or resolved
after the watermark) from raw rows, merged; a filter the aggregates cannot answer (label matchers, `acked`, …)
reads raw rows only. `sources` reports which were used. Counts, sums and means are exact either way; with
aggregates, p50/p90 come from the merged duration histograms (rollups.py buckets: the estimate lies in the bucket
of the exact value or its neighbour: off by less than one bucket, < 29 % above 1 s); raw-only answers interpolate
exactly.

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
import math
from collections import defaultdict
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import aggregate_reads as reads
from . import aggregates
from .aggregates import mtta_expr, mtta_present, mttr_expr, mttr_present, seconds_between  # noqa: F401 (API)
from .models import Alert, Notification, NotificationItem
from .queries import AlertFilter, where_clauses

_alerts = Alert.__table__
_messages = Notification.__table__
_items = NotificationItem.__table__


# --- durations and percentiles -----------------------------------------------------------------------------


def interpolate(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-quantile of sorted values, linear between closest ranks; None for no values."""
    n = len(sorted_values)
    if n == 0:
        return None
    pos = (n - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclasses.dataclass(frozen=True)
class Distribution:
    count: int
    mean: float | None
    p50: float | None
    p90: float | None

    def as_dict(self) -> dict[str, Any]:
        r = lambda v: None if v is None else round(v, 3)  # noqa: E731
        return {"count": self.count, "mean": r(self.mean), "p50": r(self.p50), "p90": r(self.p90)}


def distribution(conn: Connection, value, present, where: Sequence[Any]) -> Distribution:
    """Count, mean, p50 and p90 of `value` over the rows matching `where` and `present`."""
    if conn.dialect.name == "postgresql":
        row = conn.execute(sa.select(
            sa.func.count(), sa.func.avg(value),
            sa.func.percentile_cont(0.5).within_group(value), sa.func.percentile_cont(0.9).within_group(value),
        ).where(*where, present)).one()
        return Distribution(row[0], _f(row[1]), _f(row[2]), _f(row[3]))
    # SQLite has no percentile aggregate: the values, sorted by SQLite.
    values = [float(v) for v in conn.execute(
        sa.select(value.label("v")).where(*where, present).order_by(sa.text("v"))).scalars()]
    if not values:
        return Distribution(0, None, None, None)
    return Distribution(len(values), sum(values) / len(values), interpolate(values, 0.5), interpolate(values, 0.9))


def _f(value) -> float | None:
    return None if value is None else float(value)


# --- where the numbers come from ---------------------------------------------------------------------------

ALERTS, AGGREGATES, ROLLUPS = "alerts", "aggregates", "rollups"


def source_name(sources: set[str]) -> str:
    """`alerts`, `aggregates+alerts` when pre-aggregates answered part of it, `rollups+…` when the period reaches
    days that retention rolled up."""
    return "+".join(name for name in (ROLLUPS, AGGREGATES, ALERTS) if name in sources) or ALERTS


def _rolled(conn: Connection, f: AlertFilter, group_by: str | None = None) -> reads.RollupPart | None:
    """The rolled-up days of the period, when the rollups can answer every filter (they hold resolved
    occurrences per day, service, alertname and severity)."""
    if not _aggregable(f, allowed=("services", "severities", "alertnames")):
        return None
    return reads.read_rollups(conn, f.since, f.until, services=f.services, severities=f.severities,
                                   alertnames=f.alertnames, group_by=group_by)


def _period_free(f: AlertFilter) -> AlertFilter:
    return dataclasses.replace(f, since=None, until=None)


def _aggregable(f: AlertFilter, *, allowed: Sequence[str]) -> bool:
    """True when the aggregates can answer every filter of `f` (besides the period); `allowed` names the
    dimensions the table has. They hold resolved occurrences only: a `firing` filter is all raw."""
    if f.since is None or f.until is None or f.matchers or f.acked is not None or f.fingerprint or f.group_id:
        return False
    if f.status not in (None, "resolved"):
        return False
    dims = {"services": f.services, "severities": f.severities, "levels": f.levels, "alertnames": f.alertnames}
    return all(name in allowed or not values for name, values in dims.items())


def _raw_where(conn: Connection, f: AlertFilter, plan: reads.Plan) -> list:
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
    if _aggregable(f, allowed=("services", "severities", "levels")):
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
            parts.append(reads.read_stats(conn, plan, reads.stats_filters(f.services, f.severities,
                                                                                     f.levels)))
        if rolled is not None:
            sources.add(ROLLUPS)
            parts.append(rolled.stats)
        where = where_clauses(f) if plan is None else _raw_where(conn, f, plan)
        groups = _raw_groups(conn, where)
        for part in parts:
            for (severity, level, service), counts in part.groups.items():
                g = groups.setdefault((severity, level, "resolved", service), dict.fromkeys(_GROUP_COUNTERS, 0))
                for name in _GROUP_COUNTERS:
                    g[name] += counts[name]
        mtta = _merged_distribution(conn, mtta_expr(conn), mtta_present(), where,
                                    sum(p.mtta_count for p in parts), sum(p.mtta_sum for p in parts),
                                    [sum(col) for col in zip(*(p.mtta_hist for p in parts))])
        mttr = _merged_distribution(conn, mttr_expr(conn), mttr_present(), where,
                                    sum(p.mttr_count for p in parts), sum(p.mttr_sum for p in parts),
                                    [sum(col) for col in zip(*(p.mttr_hist for p in parts))])
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


def _merged_distribution(conn: Connection, value, present, where: Sequence[Any], count: int, total: float,
                         hist: list[int]) -> Distribution:
    """Aggregate sums and histogram plus the raw rows' values: exact count and mean, percentiles from buckets."""
    hist = list(hist)
    for (v,) in conn.execute(sa.select(value).where(*where, present)):
        v = float(v)
        count += 1
        total += v
        reads.observe(hist, v)
    if count == 0:
        return Distribution(0, None, None, None)
    return Distribution(count, total / count, reads.percentile(hist, 0.5), reads.percentile(hist, 0.9))


def _notification_statuses(conn: Connection, where: Sequence[Any]) -> dict[str, int]:
    """Messages about the matching occurrences, by status (per occurrence: one (occurrence, message) pair each)."""
    alert_ids = sa.select(_alerts.c.id).where(*where)
    rows = conn.execute(
        sa.select(_messages.c.status, sa.func.count())
        .select_from(_messages.join(_items, _items.c.notification_id == _messages.c.id))
        .where(_items.c.alert_id.in_(alert_ids)).group_by(_messages.c.status))
    return {status: int(n) for status, n in rows}


# --- top, noise, flapping ----------------------------------------------------------------------------------

TOP_BY = ("count", "duration", "escalations", "noise")


def _noisy():
    return sa.and_(_alerts.c.status == "resolved", _alerts.c.first_acked_at.is_(None))


def _duration(conn: Connection, now: dt.datetime):
    c = _alerts.c
    end = sa.func.coalesce(c.ends_at, c.resolved_at, sa.literal(now, c.starts_at.type))
    return seconds_between(conn, c.starts_at, end)


_TOP_RANK = {"count": "count", "duration": "total_seconds", "escalations": "escalations", "noise": "noisy"}


def _top_keys(conn: Connection, f: AlertFilter, *, by: str, limit: int, now: dt.datetime,
              sources: set[str]) -> list[Any]:
    """The first `limit` (alertname, service) by `by`, with count, escalations, noisy, total and longest firing
    time: aggregate rows and raw rows summed, ranked and cut by the database in one statement (so that only
    `limit` rows ever reach Python, whatever the number of distinct alerts)."""
    c = _alerts.c
    plan = None
    if _aggregable(f, allowed=("services", "alertnames")):
        plan = reads.plan(conn, f.since, f.until)
    duration = _duration(conn, now)
    where = where_clauses(f) if plan is None else _raw_where(conn, f, plan)
    parts = [sa.select(c.alertname.label("alertname"), c.service.label("service"), sa.literal(1).label("n"),
                       c.escalation_count.label("esc"), sa.case((_noisy(), 1), else_=0).label("noisy"),
                       duration.label("total"), duration.label("longest")).where(*where)]
    sources.add(ALERTS)
    if plan is not None:
        sources.add(AGGREGATES)
        parts += reads.by_alert_selects(plan, f.services, f.alertnames)
    rows = sa.union_all(*parts).subquery("top_rows")
    r = rows.c
    count, esc, noisy = sa.func.sum(r.n), sa.func.sum(r.esc), sa.func.sum(r.noisy)
    total = sa.func.sum(r.total)
    rank = {"count": count, "duration": total, "escalations": esc, "noise": noisy}[by]
    query = (sa.select(r.alertname, r.service, count.label("count"), esc.label("escalations"), noisy.label("noisy"),
                       total.label("total_seconds"), sa.func.max(r.longest).label("max_seconds"))
             .group_by(r.alertname, r.service).order_by(rank.desc(), r.alertname, r.service).limit(limit))
    if by in ("escalations", "noise"):
        query = query.having(rank > 0)
    return conn.execute(query).all()


def top(conn: Connection, f: AlertFilter, *, by: str, limit: int, now: dt.datetime,
        sources: set[str] | None = None) -> list[dict[str, Any]]:
    """The alerts (alertname + service) that fire most, fire longest, escalate most, or are noisiest: resolved
    without anyone acknowledging them — with their median firing time, the hint that their rule's `for:` should
    grow."""
    if by not in TOP_BY:
        raise ValueError(f"by must be one of {', '.join(TOP_BY)}")
    rows = _top_keys(conn, f, by=by, limit=limit, now=now, sources=sources if sources is not None else set())
    keys = [(r.alertname, r.service) for r in rows]
    if by == "count":
        fingerprints = _fingerprints(conn, f, keys)
        return [{"alertname": r.alertname, "service": r.service, "count": int(r.count),
                 "fingerprints": fingerprints.get((r.alertname, r.service), 0)} for r in rows]
    if by == "duration":
        return [{"alertname": r.alertname, "service": r.service, "count": int(r.count),
                 "total_seconds": round(float(r.total_seconds or 0), 3),
                 "max_seconds": round(float(r.max_seconds or 0), 3)} for r in rows]
    if by == "escalations":
        return [{"alertname": r.alertname, "service": r.service, "count": int(r.count),
                 "escalations": int(r.escalations)} for r in rows]
    medians = _median_durations(conn, where_clauses(f), _noisy(), _duration(conn, now), keys) if keys else {}
    return [{"alertname": r.alertname, "service": r.service, "count": int(r.count), "noisy": int(r.noisy),
             "noise_ratio": round(int(r.noisy) / int(r.count), 4),
             "median_firing_seconds": medians.get((r.alertname, r.service))} for r in rows]


def _per_key(keys: list[tuple[str, str]], make) -> Any:
    """One SELECT per (alertname, service) key, UNION ALL: each is an equality on alertname and service plus the
    period, which every planner answers from ix_alerts_alertname_starts_at; an IN list over the names lets
    PostgreSQL prefer scanning the whole period by starts_at (physically in that order)."""
    c = _alerts.c
    return sa.union_all(*[make(sa.and_(c.alertname == name, c.service == service)) for name, service in keys])


def _fingerprints(conn: Connection, f: AlertFilter, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Distinct fingerprints of a few (alertname, service) keys over the period (raw rows)."""
    if not keys:
        return {}
    c = _alerts.c
    where = where_clauses(f)
    query = _per_key(keys, lambda key: sa.select(c.alertname, c.service, sa.func.count(sa.distinct(c.fingerprint)))
                     .where(*where, key).group_by(c.alertname, c.service))
    return {(n, s): int(v) for n, s, v in conn.execute(query)}


def _median_durations(conn, where, noisy, duration, keys) -> dict[tuple[str, str], float | None]:
    c = _alerts.c
    query = _per_key(keys, lambda key: sa.select(c.alertname, c.service, duration.label("d")).where(*where, noisy, key))
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for name, service, d in conn.execute(query):
        values[(name, service)].append(float(d))
    return {k: (round(interpolate(sorted(v), 0.5), 3) if v else None) for k, v in values.items()}


MAX_FLAP_CANDIDATES = 5000


def flapping(conn: Connection, f: AlertFilter, *, window: dt.timedelta, min_occurrences: int,
             limit: int) -> list[dict[str, Any]]:
    """Fingerprints that opened at least `min_occurrences` occurrences within some `window` of the period."""
    c = _alerts.c
    where = where_clauses(f)
    candidates = _flap_candidates(conn, f, window, min_occurrences)
    if candidates is None:  # no aggregates to narrow it down: the fingerprints with enough occurrences
        candidates = [r.fingerprint for r in conn.execute(
            sa.select(c.fingerprint).where(*where).group_by(c.fingerprint)
            .having(sa.func.count() >= min_occurrences).order_by(sa.func.count().desc())
            .limit(MAX_FLAP_CANDIDATES))]
    if not candidates:
        return []
    starts: dict[str, list[dt.datetime]] = defaultdict(list)
    names: dict[str, tuple[str, str]] = {}
    for part in range(0, len(candidates), 900):
        for row in conn.execute(sa.select(c.fingerprint, c.starts_at, c.alertname, c.service)
                                .where(*where, c.fingerprint.in_(candidates[part:part + 900]))
                                .order_by(c.fingerprint, c.starts_at)):
            starts[row.fingerprint].append(row.starts_at)
            names[row.fingerprint] = (row.alertname, row.service)
    out = []
    for fp, times in starts.items():
        best, lo = 0, 0
        for hi in range(len(times)):  # the most starts inside any window, by a sliding window over sorted starts
            while times[hi] - times[lo] > window:
                lo += 1
            best = max(best, hi - lo + 1)
        if best >= min_occurrences:
            out.append({"fingerprint": fp, "alertname": names[fp][0], "service": names[fp][1],
                        "occurrences": len(times), "max_in_window": best})
    out.sort(key=lambda r: (-r["max_in_window"], -r["occurrences"], r["fingerprint"]))
    return out[:limit]


def _flap_candidates(conn: Connection, f: AlertFilter, window: dt.timedelta, min_occurrences: int) -> list[str] | None:
    """Fingerprints with at least min_occurrences − 1 occurrences in the period that started within `window` of
    their fingerprint's previous one — a superset of the flapping ones (in a window holding k starts, the last
    k − 1 each follow another within it). Settled ones from alert_stats_repeats, the rest from raw rows.
    None when the aggregates cannot answer (no plan, or a window longer than they record)."""
    if window > aggregates.MAX_FLAP_WINDOW or f.since is None or f.until is None:
        return None
    plan = reads.plan(conn, f.since, f.until)
    if plan is None:
        return None
    counts: dict[str, int] = defaultdict(int)
    for fp, n in reads.repeat_fingerprints(conn, plan, window).items():
        counts[fp] += n
    c = _alerts.c
    previous = _alerts.alias("previous")
    prev_start = (sa.select(sa.func.max(previous.c.starts_at))
                  .where(previous.c.fingerprint == c.fingerprint, previous.c.starts_at < c.starts_at)
                  .scalar_subquery())
    raw = sa.select(c.fingerprint, seconds_between(conn, prev_start, c.starts_at).label("gap")).where(
        c.id.in_(plan.raw_ids(conn))).subquery()
    for fp, n in conn.execute(sa.select(raw.c.fingerprint, sa.func.count())
                              .where(raw.c.gap <= window.total_seconds()).group_by(raw.c.fingerprint)):
        counts[fp] += int(n)
    found = [fp for fp, n in counts.items() if n >= min_occurrences - 1]
    found.sort(key=lambda fp: (-counts[fp], fp))
    return found[:MAX_FLAP_CANDIDATES]


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
    if aligned and _aggregable(f, allowed=("services", "severities", "levels")):
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
    where = where_clauses(f) if plan is None else _raw_where(conn, f, plan)
    for s, k, n in conn.execute(sa.select(slot.label("slot"), key.label("key"), sa.func.count())
                                .where(*where).group_by(sa.text("slot"), sa.text("key"))):
        counts[(int(s), k)] += n
    return [(s, k, n) for (s, k), n in counts.items()]


# --- escalations by level pair -----------------------------------------------------------------------------


def escalations_between(conn: Connection, since: dt.datetime, until: dt.datetime) -> list[dict[str, Any]]:
    from .models import AlertEvent

    e = AlertEvent.__table__.c
    rows = conn.execute(sa.select(e.from_level, e.to_level, sa.func.count())
                        .where(e.kind == "escalated", e.at >= since, e.at < until)
                        .group_by(e.from_level, e.to_level).order_by(e.from_level, e.to_level))
    return [{"from": r[0], "to": r[1], "count": r[2]} for r in rows]
