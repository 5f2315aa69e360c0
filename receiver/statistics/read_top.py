"""The alerts that stand out over a period: top lists (most frequent, longest firing, most escalated, noisiest —
resolved without anyone acknowledging them) and flapping fingerprints.

Like read_summary.py (its docstring says where the numbers come from and how they are defined): whole hours from
the pre-aggregates when they can answer every filter (`aggregable`), the rest from raw rows, merged.
A firing occurrence's duration runs up to `now`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..store.models import Alert
from ..store.queries import AlertFilter, where_clauses
from . import read_aggregates as reads
from .read_summary import AGGREGATES, ALERTS, aggregable, interpolate, raw_where
from .write_aggregates import MAX_FLAP_WINDOW, seconds_between

_alerts = Alert.__table__


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
    if aggregable(f, allowed=("services", "alertnames")):
        plan = reads.plan(conn, f.since, f.until)
    duration = _duration(conn, now)
    where = where_clauses(f) if plan is None else raw_where(conn, f, plan)
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
    if window > MAX_FLAP_WINDOW or f.since is None or f.until is None:
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


