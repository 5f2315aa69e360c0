"""Statistics over occurrences, in SQL aggregates: counts, MTTA/MTTR (mean, p50, p90), escalations,
notification outcomes, top and noisy alerts, flapping, time buckets. Every query reads an index range on
`starts_at` (or `service, starts_at`), so its cost follows the period asked for, not the table.

Definitions (the README documents them; the tests recompute them independently):
- an occurrence is in a period when its `starts_at` is in [since, until);
- MTTA: first notification sent → first acknowledgement (`first_notified_at` → `first_acked_at`), for occurrences
  that have both; an ack before the first send counts as 0;
- MTTR: `starts_at` → resolution (Alertmanager's `endsAt`, else the time the receiver resolved it), resolved only;
- percentiles interpolate linearly between the closest ranks (numpy's default, PostgreSQL's percentile_cont).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections import defaultdict
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .models import Alert, Notification, NotificationItem
from .queries import AlertFilter, where_clauses

_alerts = Alert.__table__
_messages = Notification.__table__
_items = NotificationItem.__table__


# --- durations and percentiles -----------------------------------------------------------------------------


def seconds_between(conn: Connection, start, end):
    """end − start in seconds, as SQL."""
    if conn.dialect.name == "postgresql":
        return sa.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def mtta_expr(conn: Connection):
    raw = seconds_between(conn, _alerts.c.first_notified_at, _alerts.c.first_acked_at)
    return sa.case((raw < 0, 0.0), else_=raw)


def mttr_expr(conn: Connection):
    end = sa.func.coalesce(_alerts.c.ends_at, _alerts.c.resolved_at)
    raw = seconds_between(conn, _alerts.c.starts_at, end)
    return sa.case((raw < 0, 0.0), else_=raw)


def mtta_present():
    return sa.and_(_alerts.c.first_notified_at.is_not(None), _alerts.c.first_acked_at.is_not(None))


def mttr_present():
    return sa.and_(_alerts.c.status == "resolved",
                   sa.or_(_alerts.c.ends_at.is_not(None), _alerts.c.resolved_at.is_not(None)))


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


# --- summary -----------------------------------------------------------------------------------------------


def summary(conn: Connection, f: AlertFilter) -> dict[str, Any]:
    where = where_clauses(f)
    c = _alerts.c
    escalated = sa.case((c.escalation_count > 0, 1), else_=0)
    acked = sa.case((c.first_acked_at.is_not(None), 1), else_=0)
    rows = conn.execute(
        sa.select(c.severity, c.level, c.status, c.service, sa.func.count().label("n"),
                  sa.func.sum(escalated).label("escalated"), sa.func.sum(c.escalation_count).label("escalations"),
                  sa.func.sum(acked).label("acked"))
        .where(*where).group_by(c.severity, c.level, c.status, c.service)
    ).all()
    by: dict[str, dict[str, int]] = {k: defaultdict(int) for k in ("severity", "level", "status", "service")}
    total = escalated_n = escalations = acked_n = 0
    for r in rows:
        total += r.n
        escalated_n += int(r.escalated or 0)
        escalations += int(r.escalations or 0)
        acked_n += int(r.acked or 0)
        for key in by:
            by[key][getattr(r, key)] += r.n
    notifications = notification_counts(conn, f)
    return {
        "total": total,
        "by_severity": dict(sorted(by["severity"].items())),
        "by_level": dict(sorted(by["level"].items())),
        "by_status": dict(sorted(by["status"].items())),
        "by_service": dict(sorted(by["service"].items(), key=lambda kv: (-kv[1], kv[0]))),
        "acked": acked_n,
        "mtta_seconds": distribution(conn, mtta_expr(conn), mtta_present(), where).as_dict(),
        "mttr_seconds": distribution(conn, mttr_expr(conn), mttr_present(), where).as_dict(),
        "escalations": {"count": escalations, "escalated_alerts": escalated_n,
                        "rate": round(escalated_n / total, 4) if total else None},
        "notifications": notifications,
    }


def notification_counts(conn: Connection, f: AlertFilter) -> dict[str, Any]:
    """Messages about the period's occurrences, by status; failure rate = dead / (sent + dead)."""
    alert_ids = sa.select(_alerts.c.id).where(*where_clauses(f))
    rows = conn.execute(
        sa.select(_messages.c.status, sa.func.count(sa.distinct(_messages.c.id)))
        .select_from(_messages.join(_items, _items.c.notification_id == _messages.c.id))
        .where(_items.c.alert_id.in_(alert_ids)).group_by(_messages.c.status)
    ).all()
    counts = {status: n for status, n in rows}
    sent, dead = counts.get("sent", 0), counts.get("dead", 0)
    return {"total": sum(counts.values()), "by_status": dict(sorted(counts.items())),
            "failure_rate": round(dead / (sent + dead), 4) if sent + dead else None}


# --- top, noise, flapping ----------------------------------------------------------------------------------

TOP_BY = ("count", "duration", "escalations", "noise")


def top(conn: Connection, f: AlertFilter, *, by: str, limit: int, now: dt.datetime) -> list[dict[str, Any]]:
    """The alerts (alertname + service) that fire most, fire longest, escalate most, or are noisiest: resolved
    without anyone acknowledging them — with their median firing time, the hint that their rule's `for:` should
    grow."""
    c = _alerts.c
    where = where_clauses(f)
    key = (c.alertname, c.service)
    end = sa.func.coalesce(c.ends_at, c.resolved_at, sa.literal(now, c.starts_at.type))
    duration = seconds_between(conn, c.starts_at, end)
    count = sa.func.count().label("count")
    if by == "count":
        q = sa.select(*key, count, sa.func.count(sa.distinct(c.fingerprint)).label("fingerprints")) \
            .where(*where).group_by(*key).order_by(count.desc(), *key)
    elif by == "duration":
        total = sa.func.sum(duration).label("total_seconds")
        q = sa.select(*key, count, total, sa.func.max(duration).label("max_seconds")) \
            .where(*where).group_by(*key).order_by(total.desc(), *key)
    elif by == "escalations":
        esc = sa.func.sum(c.escalation_count).label("escalations")
        q = sa.select(*key, count, esc).where(*where).group_by(*key) \
            .having(sa.func.sum(c.escalation_count) > 0).order_by(esc.desc(), *key)
    elif by == "noise":
        return _noise(conn, where, duration, limit)
    else:
        raise ValueError(f"by must be one of {', '.join(TOP_BY)}")
    out = []
    for row in conn.execute(q.limit(limit)):
        item = dict(row._mapping)
        for k in ("total_seconds", "max_seconds"):
            if k in item:
                item[k] = round(float(item[k] or 0), 3)
        out.append(item)
    return out


def _noise(conn: Connection, where: Sequence[Any], duration, limit: int) -> list[dict[str, Any]]:
    c = _alerts.c
    key = (c.alertname, c.service)
    noisy = sa.and_(c.status == "resolved", c.first_acked_at.is_(None))
    noisy_n = sa.func.sum(sa.case((noisy, 1), else_=0)).label("noisy")
    rows = conn.execute(
        sa.select(*key, sa.func.count().label("count"), noisy_n).where(*where).group_by(*key)
        .having(noisy_n > 0).order_by(noisy_n.desc(), *key).limit(limit)
    ).all()
    if not rows:
        return []
    medians = _median_durations(conn, where, noisy, duration, [(r.alertname, r.service) for r in rows])
    return [{"alertname": r.alertname, "service": r.service, "count": r.count, "noisy": int(r.noisy),
             "noise_ratio": round(int(r.noisy) / r.count, 4),
             "median_firing_seconds": medians.get((r.alertname, r.service))} for r in rows]


def _median_durations(conn, where, noisy, duration, keys) -> dict[tuple[str, str], float | None]:
    c = _alerts.c
    names = sorted({k[0] for k in keys})
    rows = conn.execute(sa.select(c.alertname, c.service, duration.label("d"))
                        .where(*where, noisy, c.alertname.in_(names)).order_by(c.alertname, c.service, sa.text("d")))
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        if (row.alertname, row.service) in keys:
            values[(row.alertname, row.service)].append(float(row.d))
    return {k: (round(interpolate(v, 0.5), 3) if v else None) for k, v in values.items()}


def flapping(conn: Connection, f: AlertFilter, *, window: dt.timedelta, min_occurrences: int,
             limit: int) -> list[dict[str, Any]]:
    """Fingerprints that opened at least `min_occurrences` occurrences within some `window` of the period."""
    c = _alerts.c
    where = where_clauses(f)
    candidates = [r.fingerprint for r in conn.execute(
        sa.select(c.fingerprint).where(*where).group_by(c.fingerprint)
        .having(sa.func.count() >= min_occurrences).order_by(sa.func.count().desc()).limit(limit * 5))]
    if not candidates:
        return []
    starts: dict[str, list[dt.datetime]] = defaultdict(list)
    names: dict[str, tuple[str, str]] = {}
    for row in conn.execute(sa.select(c.fingerprint, c.starts_at, c.alertname, c.service)
                            .where(*where, c.fingerprint.in_(candidates)).order_by(c.fingerprint, c.starts_at)):
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


# --- trends ------------------------------------------------------------------------------------------------

SLOT_SECONDS = 900  # every real time zone offset is a multiple of 15 minutes


def slot_counts(conn: Connection, f: AlertFilter, group_by: str | None) -> list[tuple[int, str, int]]:
    """(15-minute UTC slot number, group value, count) over the period."""
    c = _alerts.c
    if conn.dialect.name == "postgresql":
        slot = sa.cast(sa.func.floor(sa.extract("epoch", c.starts_at) / SLOT_SECONDS), sa.BigInteger)
    else:
        slot = sa.cast(sa.func.strftime("%s", c.starts_at), sa.Integer) / SLOT_SECONDS
    key = getattr(c, group_by) if group_by else sa.literal("all")
    rows = conn.execute(sa.select(slot.label("slot"), key.label("key"), sa.func.count())
                        .where(*where_clauses(f)).group_by(sa.text("slot"), sa.text("key")))
    return [(int(r[0]), r[1], r[2]) for r in rows]


# --- escalations by level pair -----------------------------------------------------------------------------


def escalations_between(conn: Connection, since: dt.datetime, until: dt.datetime) -> list[dict[str, Any]]:
    from .models import AlertEvent

    e = AlertEvent.__table__.c
    rows = conn.execute(sa.select(e.from_level, e.to_level, sa.func.count())
                        .where(e.kind == "escalated", e.at >= since, e.at < until)
                        .group_by(e.from_level, e.to_level).order_by(e.from_level, e.to_level))
    return [{"from": r[0], "to": r[1], "count": r[2]} for r in rows]
