"""Reading the statistics aggregates (write_aggregates.py explains them): the plan of a period — which whole hours
and days come from aggregate rows, which occurrences from raw rows — the sums of aggregate rows, and the daily
rollups of the days retention deleted. read_summary.py and read_top.py merge these with their raw queries."""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import functools
import json
import weakref
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from ..store.models import (STATS_HIST_BUCKETS, Alert, AlertRollup, AlertStats, AlertStatsByAlert, AlertStatsRepeat,
                            AlertStatsSla)
from . import write_rollups as rollups
from .write_aggregates import (FIRING, MTTA_BUCKETS, MTTR_BUCKETS, NOTIFICATION_STATUSES, RESOLVED, SPAN_DAY,
                               SPAN_HOUR, UTC, ceil_day, ceil_hour, floor_day, floor_hour, read_state, rollup_floor)

_alerts = Alert.__table__
_stats = AlertStats.__table__
_by_alert = AlertStatsByAlert.__table__
_repeats = AlertStatsRepeat.__table__
_rollups = AlertRollup.__table__
_sla = AlertStatsSla.__table__

MAX_LISTED_IDS = 10000  # raw ids a plan sends as parameters; more go as a subquery


@dataclasses.dataclass(frozen=True)
class Plan:
    """Where each part of a period [since, until) is read from.

    Aggregate rows cover the whole hours [start, end) — day rows for the whole UTC days [day_start, day_end) inside
    it, hour rows for the rest — holding settled(watermark) occurrences. Raw rows cover the remainder: the partial
    hours at both edges (all occurrences) and, inside [start, end), those not settled."""

    since: dt.datetime
    until: dt.datetime
    watermark: dt.datetime
    start: dt.datetime
    end: dt.datetime
    day_start: dt.datetime
    day_end: dt.datetime

    def hour_ranges(self) -> list[tuple[dt.datetime, dt.datetime]]:
        if self.day_start >= self.day_end:
            return [(self.start, self.end)]
        return [(a, b) for a, b in ((self.start, self.day_start), (self.day_end, self.end)) if a < b]

    def day_ranges(self) -> list[tuple[dt.datetime, dt.datetime]]:
        return [(self.day_start, self.day_end)] if self.day_start < self.day_end else []

    _ids: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def raw_ids_query(self):
        """The ids of the occurrences of [since, until) the aggregates do not hold (before other filters): edges,
        firing, and resolved at or after the watermark (or without a resolution time)."""
        c = _alerts.c
        middle = [c.starts_at >= self.start, c.starts_at < self.end]
        parts = [sa.select(c.id).where(FIRING, *middle),
                 sa.select(c.id).where(RESOLVED, c.resolved_at >= self.watermark, *middle),
                 sa.select(c.id).where(RESOLVED, c.resolved_at.is_(None), *middle)]
        return sa.union_all(*parts, *self._edges())

    def _edges(self) -> list:
        c = _alerts.c
        parts = []
        if self.since < self.start:
            parts.append(sa.select(c.id).where(c.starts_at >= self.since, c.starts_at < self.start))
        if self.end < self.until:
            parts.append(sa.select(c.id).where(c.starts_at >= self.end, c.starts_at < self.until))
        return parts

    def raw_ids(self, conn: Connection):
        """The same ids as a list, read once per plan (several statements use it), or the subquery when there
        are too many to send as parameters. The resolved-after-the-watermark ones are read by their resolution
        time alone and their period checked here: that index range is small by construction, while a planner
        without statistics for it (SQLite, a fresh index) would rather scan the whole period by starts_at."""
        if "ids" not in self._ids:
            c = _alerts.c
            limit = MAX_LISTED_IDS + 1
            ids = list(conn.execute(sa.union_all(
                sa.select(c.id).where(FIRING, c.starts_at >= self.start, c.starts_at < self.end),
                *self._edges()).limit(limit)).scalars())
            # On SQLite `+starts_at` keeps the planner off ix_alerts_starts_at: the resolution-time range is small.
            starts = (c.starts_at if conn.dialect.name == "postgresql"
                      else sa.literal_column("+alerts.starts_at", type_=c.starts_at.type))
            for unsettled in (c.resolved_at >= self.watermark, c.resolved_at.is_(None)):
                ids += conn.execute(sa.select(c.id).where(RESOLVED, unsettled, starts >= self.start,
                                                          starts < self.end).limit(limit)).scalars()
            self._ids["ids"] = ids if len(ids) <= MAX_LISTED_IDS else None
        ids = self._ids["ids"]
        if ids is None:
            return sa.select(self.raw_ids_query().subquery().c.id)
        return id_list(conn, sorted(ids))


def id_list(conn: Connection, ids: Sequence[int]):
    """An IN-able list of ids as ONE parameter (SQLite: a JSON array through json_each; PostgreSQL: an array):
    binding thousands of separate parameters cost more than the queries using them."""
    if conn.dialect.name == "postgresql":
        return sa.select(sa.func.unnest(sa.bindparam("raw_ids", list(ids), type_=postgresql.ARRAY(sa.BigInteger))))
    each = sa.func.json_each(sa.bindparam("raw_ids", json.dumps(list(ids)), type_=sa.String)).table_valued("value")
    return sa.select(each.c.value)


_PLANS: "weakref.WeakKeyDictionary[Connection, dict]" = weakref.WeakKeyDictionary()


def plan(conn: Connection, since: dt.datetime, until: dt.datetime, *, days: bool = True) -> Plan | None:
    """A plan for [since, until), or None when the aggregates cannot help (none published yet, or no whole hour
    in the period after the rolled-up days). `days=False`: hour rows only. One plan per connection and period
    (a request's transaction): its raw ids are read once, however many statements use them."""
    cache = _PLANS.setdefault(conn, {})
    key = (since, until, days)
    if key not in cache:
        cache[key] = _plan(conn, since, until, days)
    return cache[key]


def _plan(conn: Connection, since: dt.datetime, until: dt.datetime, days: bool) -> Plan | None:
    state = read_state(conn)
    if state.watermark is None:
        return None
    floor = rollup_floor(conn)
    start = ceil_hour(max(since, floor) if floor else since)
    end = floor_hour(until)
    if start >= end:
        return None
    day_start, day_end = (ceil_day(start), floor_day(end)) if days else (end, end)
    if day_start >= day_end:
        day_start = day_end = end
    return Plan(since, until, state.watermark, start, end, day_start, day_end)


def _bucket_where(table, p: Plan):
    t = table.c
    clauses = [sa.and_(t.span == SPAN_DAY, t.bucket >= a, t.bucket < b) for a, b in p.day_ranges()]
    clauses += [sa.and_(t.span == SPAN_HOUR, t.bucket >= a, t.bucket < b) for a, b in p.hour_ranges()]
    return clauses


bucket_where = _bucket_where  # read_percentiles.py reads alert_stats_sketch's rows of a plan with it


def _in_filters(*pairs) -> list:
    """`column IN (values)` for each (column, values) whose values are given."""
    return [column.in_(list(values)) for column, values in pairs if values]


def stats_filters(services: Sequence[str], severities: Sequence[str], levels: Sequence[str]) -> list:
    t = _stats.c
    return _in_filters((t.service, services), (t.severity, severities), (t.level, levels))


_READ_COUNTERS = ("occurrences", "acked", "escalated", "escalations")
_READ_SUMS = ("mtta_count", "mtta_sum", "mttr_count", "mttr_sum",
              *(f"notifications_{s}" for s in NOTIFICATION_STATUSES), *MTTA_BUCKETS, *MTTR_BUCKETS)


@functools.lru_cache(maxsize=2)
def _stats_sums(histograms: bool = True):
    """The 140-odd sums read_stats selects (18 without the histograms), built once (building them cost more than
    the query)."""
    names = _READ_SUMS if histograms else _READ_SUMS[:-2 * STATS_HIST_BUCKETS]
    return sa.select(*[sa.func.coalesce(sa.func.sum(_stats.c[n]), 0) for n in names])


@dataclasses.dataclass
class StatsPart:
    """Sums over aggregate rows: per (severity, level, service) counts, and the merged histograms."""

    groups: dict[tuple[str, str, str], dict[str, int]]
    mtta_count: int = 0
    mtta_sum: float = 0.0
    mttr_count: int = 0
    mttr_sum: float = 0.0
    mtta_hist: list[int] = dataclasses.field(default_factory=lambda: [0] * STATS_HIST_BUCKETS)
    mttr_hist: list[int] = dataclasses.field(default_factory=lambda: [0] * STATS_HIST_BUCKETS)
    notifications: dict[str, int] = dataclasses.field(default_factory=dict)


def read_stats(conn: Connection, p: Plan, filters: list, *, histograms: bool = True) -> StatsPart:
    """Per range (day rows, hour rows): counts grouped by (severity, level, service), and the distribution and
    notification sums ungrouped (one row: 140 sums grouped 180 ways cost more in Python than in SQL). Without
    `histograms` the duration histograms stay empty (only rolled-up days still need them: read_percentiles.py)."""
    t = _stats.c
    part = StatsPart(groups={})
    for clause in _bucket_where(_stats, p):
        rows = conn.execute(sa.select(t.severity, t.level, t.service, *[sa.func.sum(t[n]) for n in _READ_COUNTERS])
                            .where(clause, *filters).group_by(t.severity, t.level, t.service))
        for row in rows:
            g = part.groups.setdefault((row[0], row[1], row[2]), dict.fromkeys(_READ_COUNTERS, 0))
            for i, name in enumerate(_READ_COUNTERS):
                g[name] += int(row[3 + i])
        sums = dict(zip(_READ_SUMS, conn.execute(_stats_sums(histograms).where(clause, *filters)).one()))
        part.mtta_count += int(sums["mtta_count"])
        part.mtta_sum += float(sums["mtta_sum"])
        part.mttr_count += int(sums["mttr_count"])
        part.mttr_sum += float(sums["mttr_sum"])
        for s in NOTIFICATION_STATUSES:
            part.notifications[s] = part.notifications.get(s, 0) + int(sums[f"notifications_{s}"])
        for i in range(STATS_HIST_BUCKETS if histograms else 0):
            part.mtta_hist[i] += int(sums[MTTA_BUCKETS[i]])
            part.mttr_hist[i] += int(sums[MTTR_BUCKETS[i]])
    return part


def read_slots(conn: Connection, p: Plan, filters: list, group_by: str | None) -> dict[tuple[dt.datetime, str], int]:
    """Settled occurrences per aggregate bucket start and group value."""
    t = _stats.c
    key = t[group_by] if group_by else sa.literal("all")
    out: dict[tuple[dt.datetime, str], int] = {}
    for clause in _bucket_where(_stats, p):
        for bucket, k, n in conn.execute(sa.select(t.bucket, key.label("k"), sa.func.sum(t.occurrences))
                                         .where(clause, *filters).group_by(t.bucket, sa.text("k"))):
            out[(bucket, k)] = out.get((bucket, k), 0) + int(n)
    return out


def sla_where(p: Plan, services: Sequence[str], severities: Sequence[str], levels: Sequence[str]) -> list:
    """The WHERE of alert_stats_sla's rows of the plan's ranges (day and hour rows never overlap: one OR) with
    these filters, for read_sla.py's GROUP BY."""
    t = _sla.c
    return [sa.or_(*_bucket_where(_sla, p)),
            *_in_filters((t.service, services), (t.severity, severities), (t.level, levels))]


def by_alert_selects(p: Plan, services: Sequence[str], alertnames: Sequence[str]) -> list:
    """SELECTs of (alertname, service, n, esc, noisy, total, longest) over the aggregate rows of the plan, one
    per range, for the caller to UNION with its raw rows and rank in SQL."""
    t = _by_alert.c
    filters = _in_filters((t.service, services), (t.alertname, alertnames))
    return [sa.select(t.alertname, t.service, t.occurrences, t.escalations, t.noisy, t.duration_sum, t.duration_max)
            .where(clause, *filters) for clause in _bucket_where(_by_alert, p)]


def repeat_fingerprints(conn: Connection, p: Plan, window: dt.timedelta) -> dict[str, int]:
    """Fingerprint → settled occurrences in the aggregated hours that started within `window` of the previous
    occurrence of their fingerprint."""
    r = _repeats.c
    out: dict[str, int] = {}
    rows = conn.execute(sa.select(r.fingerprint, sa.func.count()).where(
        r.starts_at >= p.start, r.starts_at < p.end, r.gap_seconds <= window.total_seconds()).group_by(r.fingerprint))
    for fp, n in rows:
        out[fp] = int(n)
    return out


@dataclasses.dataclass
class RollupPart:
    """What alert_rollups say about the rolled-up days of a period (all of them resolved occurrences)."""

    by_severity: dict[str, int] = dataclasses.field(default_factory=dict)
    by_level: dict[str, int] = dataclasses.field(default_factory=dict)
    by_service: dict[str, int] = dataclasses.field(default_factory=dict)
    by_day: dict[tuple[dt.datetime, str], int] = dataclasses.field(default_factory=dict)  # (day, key) → count
    occurrences: int = 0
    acked: int = 0
    escalated: int = 0
    escalations: int = 0
    stats: StatsPart = dataclasses.field(default_factory=lambda: StatsPart(groups={}))


def read_rollups(conn: Connection, since: dt.datetime, until: dt.datetime, *, services: Sequence[str] = (),
                 severities: Sequence[str] = (), alertnames: Sequence[str] = (),
                 group_by: str | None = None) -> RollupPart | None:
    """The rollup days whose UTC midnight lies in [since, until) and before the rollup floor (retention keeps
    whole days: a period edge inside a rolled-up day counts that day when it starts in the period), or None when
    there are none."""
    floor = rollup_floor(conn)
    if floor is None or since >= floor:
        return None
    r = _rollups.c
    first, last = ceil_day(since).date(), min(ceil_day(until), floor).date()
    if first >= last:
        return None
    where = [r.day >= first, r.day < last]
    if services:
        where.append(r.service.in_(list(services)))
    if severities:
        where.append(r.severity.in_(list(severities)))
    if alertnames:
        where.append(r.alertname.in_(list(alertnames)))
    part = RollupPart()
    rows = conn.execute(sa.select(r.day, r.service, r.severity, r.occurrences, r.acked, r.escalated, r.escalations,
                                  r.levels, r.mtta_count, r.mtta_sum, r.mtta_hist, r.mttr_count, r.mttr_sum,
                                  r.mttr_hist, r.notifications, r.notifications_failed).where(*where))
    for row in rows:
        n = int(row.occurrences)
        part.occurrences += n
        part.acked += int(row.acked)
        part.escalated += int(row.escalated)
        part.escalations += int(row.escalations)
        part.by_severity[row.severity] = part.by_severity.get(row.severity, 0) + n
        part.by_service[row.service] = part.by_service.get(row.service, 0) + n
        for level, count in _json_map(row.levels).items():
            part.by_level[level] = part.by_level.get(level, 0) + int(count)
        day = row.day if isinstance(row.day, dt.date) else dt.date.fromisoformat(row.day)
        key = "all" if group_by is None else {"service": row.service, "severity": row.severity}.get(group_by)
        if key is not None:
            start = dt.datetime.combine(day, dt.time(0), tzinfo=UTC)
            part.by_day[(start, key)] = part.by_day.get((start, key), 0) + n
        elif group_by == "level":
            start = dt.datetime.combine(day, dt.time(0), tzinfo=UTC)
            for level, count in _json_map(row.levels).items():
                part.by_day[(start, level)] = part.by_day.get((start, level), 0) + int(count)
        st = part.stats
        st.mtta_count += int(row.mtta_count)
        st.mtta_sum += float(row.mtta_sum)
        st.mttr_count += int(row.mttr_count)
        st.mttr_sum += float(row.mttr_sum)
        for hist, stored in ((st.mtta_hist, row.mtta_hist), (st.mttr_hist, row.mttr_hist)):
            for k, count in _json_map(stored).items():
                hist[_KEY_INDEX[k]] += int(count)
        # Retention only removes occurrences whose messages were all finished: sent, or dead.
        dead = int(row.notifications_failed)
        st.notifications["sent"] = st.notifications.get("sent", 0) + int(row.notifications) - dead
        st.notifications["dead"] = st.notifications.get("dead", 0) + dead
    return part if part.occurrences else None


_KEY_INDEX = {k: i for i, k in enumerate(rollups.KEYS)}


def _json_map(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    return value if isinstance(value, dict) else json.loads(value)


def percentile(hist: Sequence[int], q: float) -> float | None:
    """A percentile of a histogram in bucket order (rollups' interpolation inside the bucket)."""
    return rollups.percentile({rollups.KEYS[i]: n for i, n in enumerate(hist) if n}, q)


def observe(hist: list[int], seconds: float) -> None:
    hist[bisect.bisect_left(rollups.BOUNDS, max(0.0, seconds))] += 1
