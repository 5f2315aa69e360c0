"""Daily rollups: what retention keeps of the occurrences it deletes (table `alert_rollups`, one row per UTC day of
`starts_at`, service, alertname and severity), the fixed duration histogram they use, and percentiles over it.

Invariant: every occurrence is counted exactly once, either as a raw row in `alerts` or in `alert_rollups`, never
both. Retention keeps it by folding a batch (`records`, `aggregate` and `fold` here) and deleting the same rows
(store/expiry.py) in one write transaction (`purge_batch` in engine/retention.py): a second run, or a second
engine, finds nothing left to fold. A day can be partly raw and partly rolled up (an occurrence still firing, or
ending after the cutoff, stays raw): add both.

Histograms are JSON objects `{upper_bound_seconds: count}` over fixed log-spaced buckets (BOUNDS, 1 s … 30 days,
60 buckets, each about 28 % wider than the one before, plus "+Inf"), stored sparse (empty buckets left out).
A bucket holds values v with previous bound < v ≤ bound, as Prometheus' `le`. `percentile` interpolates linearly
inside the bucket that holds the q-th value, so its error is at most that bucket's width.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import json
import math
from typing import Any, Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain import NotificationStatus
from ..store.models import Alert, AlertRollup, Notification, NotificationItem
from ..store.first_notified import first_notified_at
from ..store.sql import chunks

_rollups = AlertRollup.__table__
_alerts = Alert.__table__
_items = NotificationItem.__table__
_messages = Notification.__table__

# --- the bucket scheme (fixed forever: stored histograms name their buckets by these bounds) -----------------

MAX_BOUND = 30 * 86400.0
N_BOUNDS = 60


def _bounds() -> tuple[float, ...]:
    # 1 s × r^i up to 30 days, rounded to 3 significant digits so the JSON keys stay readable ("1.28", "4190").
    out = [float(f"{MAX_BOUND ** (i / (N_BOUNDS - 1)):.3g}") for i in range(N_BOUNDS - 1)] + [MAX_BOUND]
    assert all(a < b for a, b in zip(out, out[1:])), "bounds must increase"
    return tuple(out)


BOUNDS: tuple[float, ...] = _bounds()
INF = "+Inf"


def bound_key(bound: float) -> str:
    return INF if math.isinf(bound) else format(bound, ".10g")


KEYS: tuple[str, ...] = tuple(bound_key(b) for b in BOUNDS) + (INF,)
_KEY_INDEX = {k: i for i, k in enumerate(KEYS)}


def bucket_of(seconds: float) -> str:
    """The key of the bucket holding a duration (negative durations count as 0)."""
    i = bisect.bisect_left(BOUNDS, max(0.0, seconds))
    return KEYS[i]


def bucket_range(key: str) -> tuple[float, float]:
    """(lower, upper) bound of a bucket: values v with lower < v ≤ upper (the first bucket starts at 0)."""
    i = _KEY_INDEX[key]
    lower = 0.0 if i == 0 else BOUNDS[i - 1]
    upper = math.inf if i == len(BOUNDS) else BOUNDS[i]
    return lower, upper


def observe(hist: dict[str, int], seconds: float) -> None:
    key = bucket_of(seconds)
    hist[key] = hist.get(key, 0) + 1


def merge(hists: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The sum of histograms (rollup rows of several days, services…), keys in bucket order."""
    total: dict[str, int] = {}
    for hist in hists:
        for key, count in (hist or {}).items():
            if key not in _KEY_INDEX:
                raise ValueError(f"unknown histogram bucket {key!r}")
            total[key] = total.get(key, 0) + int(count)
    return {k: total[k] for k in sorted(total, key=_KEY_INDEX.__getitem__) if total[k]}


def percentile(hist: Mapping[str, Any], q: float) -> float | None:
    """The q-quantile (0 ≤ q ≤ 1) of a histogram, None when empty.

    The value of rank q·n lies in the bucket holding the ⌈q·n⌉-th smallest value; the estimate interpolates
    linearly inside that bucket. Exact stats (read_summary.py) interpolate between the values of ranks ⌊(n−1)q⌋
    and ⌈(n−1)q⌉, which are that value or its neighbour: the two agree to within the width of those buckets.
    Values above 30 days (+Inf bucket) are reported as 30 days.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must be between 0 and 1")
    items = [(k, int(c)) for k, c in merge([hist]).items()]
    n = sum(c for _, c in items)
    if n == 0:
        return None
    rank = q * n
    k = min(n, max(1, math.ceil(rank - 1e-9)))
    seen = 0
    for key, count in items:
        if seen + count >= k:
            lower, upper = bucket_range(key)
            if math.isinf(upper):
                return lower
            fraction = min(1.0, max(0.0, (rank - seen) / count))
            return lower + (upper - lower) * fraction
        seen += count
    return None  # not reached


# --- what a batch of occurrences adds to the rollups --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AlertRecord:
    """What a rollup needs of one occurrence (read by `records` just before retention deletes it)."""

    starts_at: dt.datetime
    service: str
    alertname: str
    severity: str
    status: str
    level: str
    ends_at: dt.datetime | None
    resolved_at: dt.datetime | None
    first_notified_at: dt.datetime | None
    first_acked_at: dt.datetime | None
    escalation_count: int
    notifications: int  # messages about this occurrence (a message about k alerts counts for each of them)
    notifications_dead: int


Key = tuple[dt.date, str, str, str]  # (UTC day of starts_at, service, alertname, severity)


@dataclasses.dataclass
class Delta:
    occurrences: int = 0
    resolved: int = 0
    acked: int = 0
    escalated: int = 0
    escalations: int = 0
    levels: dict[str, int] = dataclasses.field(default_factory=dict)
    mtta_count: int = 0
    mtta_sum: float = 0.0
    mtta_hist: dict[str, int] = dataclasses.field(default_factory=dict)
    mttr_count: int = 0
    mttr_sum: float = 0.0
    mttr_hist: dict[str, int] = dataclasses.field(default_factory=dict)
    notifications: int = 0
    notifications_failed: int = 0

    def add(self, a: AlertRecord) -> None:
        self.occurrences += 1
        self.levels[a.level] = self.levels.get(a.level, 0) + 1
        if a.first_acked_at is not None:
            self.acked += 1
        if a.escalation_count > 0:
            self.escalated += 1
            self.escalations += a.escalation_count
        if a.first_notified_at is not None and a.first_acked_at is not None:
            # As read_summary.py: an ack before the first send (by API, during group_wait) counts as 0.
            mtta = max(0.0, (a.first_acked_at - a.first_notified_at).total_seconds())
            self.mtta_count += 1
            self.mtta_sum += mtta
            observe(self.mtta_hist, mtta)
        end = a.ends_at or a.resolved_at
        if a.status == "resolved":
            self.resolved += 1
            if end is not None:
                mttr = max(0.0, (end - a.starts_at).total_seconds())
                self.mttr_count += 1
                self.mttr_sum += mttr
                observe(self.mttr_hist, mttr)
        self.notifications += a.notifications
        self.notifications_failed += a.notifications_dead


def key_of(a: AlertRecord) -> Key:
    return (a.starts_at.astimezone(dt.timezone.utc).date(), a.service, a.alertname, a.severity)


def aggregate(records: Iterable[AlertRecord]) -> dict[Key, Delta]:
    out: dict[Key, Delta] = {}
    for a in records:
        out.setdefault(key_of(a), Delta()).add(a)
    return out


def records(conn: Connection, ids: list[int]) -> list[AlertRecord]:
    """What the rollups need of these occurrences: two set-based queries for the whole batch."""
    c = _alerts.c
    counts: dict[int, tuple[int, int]] = {}
    dead = sa.func.count(sa.distinct(sa.case((_messages.c.status == NotificationStatus.DEAD.value, _messages.c.id))))
    for part in chunks(ids, 10000):
        for alert_id, total, n_dead in conn.execute(
                sa.select(_items.c.alert_id, sa.func.count(sa.distinct(_messages.c.id)), dead)
                .select_from(_items.join(_messages, _messages.c.id == _items.c.notification_id))
                .where(_items.c.alert_id.in_(part)).group_by(_items.c.alert_id)):
            counts[alert_id] = (total, n_dead)
    out = []
    for part in chunks(ids, 10000):
        for r in conn.execute(sa.select(c.id, c.starts_at, c.service, c.alertname, c.severity, c.status, c.level,
                                        c.ends_at, c.resolved_at, first_notified_at().label("first_notified_at"),
                                        c.first_acked_at, c.escalation_count).where(c.id.in_(part))):
            total, n_dead = counts.get(r.id, (0, 0))
            out.append(AlertRecord(r.starts_at, r.service, r.alertname, r.severity, r.status, r.level, r.ends_at,
                                   r.resolved_at, r.first_notified_at, r.first_acked_at, r.escalation_count,
                                   total, n_dead))
    return out


_KEYS = ("day", "service", "alertname", "severity")
_COUNTERS = ("occurrences", "resolved", "acked", "escalated", "escalations", "mtta_count", "mttr_count",
             "notifications", "notifications_failed")
_SUMS = ("mtta_sum", "mttr_sum")
_HISTS = ("levels", "mtta_hist", "mttr_hist")
_VALUES = _COUNTERS + _SUMS + _HISTS


def fold(conn: Connection, deltas: Mapping[Key, Delta]) -> int:
    """Add `deltas` to the rollup rows of their keys, in the caller's write transaction; returns the rows touched.

    Idempotence is the caller's part: fold exactly the rows it deletes, in the same transaction. A key without a
    row gets one (INSERT … ON CONFLICT DO NOTHING, in key order); the keys that had one (a day folded over several
    batches or runs) are locked (FOR UPDATE on PostgreSQL; SQLite's writer lock is already held), read, added to
    and written back. Statements go straight to the driver: building them through SQLAlchemy for a few thousand
    keys cost more than the database's work (measured: 900 ms of a 1.4 s batch of 2,000).
    """
    if not deltas:
        return 0
    pg = conn.dialect.name == "postgresql"
    ph = "%s" if pg else "?"
    keys = sorted(deltas)
    cur = conn.connection.driver_connection.cursor()
    try:
        inserted: set[Key] = set()
        one = "(" + ", ".join([ph] * len(_KEYS + _COUNTERS + _SUMS)
                              + [ph + ("::json" if pg else "")] * len(_HISTS)) + ")"
        for part in _chunks(keys, 1000):  # 19 parameters a row: under SQLite's 32,766
            cur.execute(f"INSERT INTO {_rollups.name} ({', '.join(_KEYS + _VALUES)}) VALUES "
                        + ", ".join([one] * len(part)) + f" ON CONFLICT DO NOTHING RETURNING {', '.join(_KEYS)}",
                        [v for key in part for v in _insert_params(key, deltas[key], pg)])
            inserted.update((_date(r[0]), r[1], r[2], r[3]) for r in cur.fetchall())
        existing = [k for k in keys if k not in inserted]
        updates = []
        for part in _chunks(existing, 1000):
            # The keys as a CTE joined on the unique index (a row-value IN (…) scans the whole table on SQLite).
            row = f"({ph}::date, {ph}, {ph}, {ph})" if pg else f"({ph}, {ph}, {ph}, {ph})"
            cur.execute(f"WITH k ({', '.join(_KEYS)}) AS (VALUES {', '.join([row] * len(part))}) "
                        f"SELECT r.id, {', '.join('r.' + name for name in _KEYS + _VALUES)} FROM {_rollups.name} r "
                        f"JOIN k ON {' AND '.join(f'r.{name} = k.{name}' for name in _KEYS)} "
                        f"ORDER BY {', '.join('r.' + name for name in _KEYS)}" + (" FOR UPDATE OF r" if pg else ""),
                        [v for d, s, n, sev in part for v in (d if pg else d.isoformat(), s, n, sev)])
            for r in cur.fetchall():
                delta = deltas[(_date(r[1]), r[2], r[3], r[4])]
                stored = dict(zip(_VALUES, r[5:]))
                values = [stored[name] + getattr(delta, name) for name in _COUNTERS]
                values += [float(stored[name]) + getattr(delta, name) for name in _SUMS]
                values += [_json(_add_counts(_load(stored[name]), getattr(delta, name))) for name in _HISTS]
                updates.append(values + [r[0]])
        if len(inserted) + len(updates) != len(keys):
            raise RuntimeError(f"rollup rows missing: {len(keys) - len(inserted) - len(updates)}")
        if updates:
            cast = "::json" if pg else ""
            cur.executemany(f"UPDATE {_rollups.name} SET "
                            + ", ".join(f"{name} = {ph}" + (cast if name in _HISTS else "") for name in _VALUES)
                            + f" WHERE id = {ph}", updates)
    finally:
        cur.close()
    return len(keys)


def _insert_params(key: Key, d: Delta, pg: bool) -> list[Any]:
    day, service, alertname, severity = key
    return ([day if pg else day.isoformat(), service, alertname, severity]
            + [getattr(d, name) for name in _COUNTERS] + [getattr(d, name) for name in _SUMS]
            + [_json(getattr(d, name)) for name in _HISTS])


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _json(value: Mapping[str, int]) -> str:
    return json.dumps(value, separators=(",", ":"))


def _load(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    return value if isinstance(value, dict) else json.loads(value)


def _add_counts(stored: Mapping[str, Any], delta: Mapping[str, int]) -> dict[str, int]:
    out = {k: int(v) for k, v in stored.items()}
    for k, v in delta.items():
        out[k] = out.get(k, 0) + v
    return out


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]
