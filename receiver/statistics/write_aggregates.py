"""Pre-aggregated statistics: what the stats endpoints read instead of a month of raw occurrences.

Reading them is read_aggregates.py. Tables (store/models.py): `alert_stats` per (UTC hour or day of `starts_at`,
service, severity, final level) with counts, MTTA/MTTR sums and histograms (write_rollups.py's 61 buckets, one
integer column each so SQL sums them), escalations and notification outcomes; `alert_stats_by_alert` per (hour
or day, alertname, service) for the top lists; `alert_stats_repeats`, the occurrences that started within a day
of their fingerprint's previous one (the only flapping candidates); `alert_stats_sla` per (hour or day, and every
column SLA compliance groups by: route, service, severity, level, ack state, sla_flags) for read_sla.py. Day rows are
the sums of their 24 hour rows.

Dimensions, for cardinality: every filter of summary, trends and health (service, severity, level; status through
"all resolved") is a column of `alert_stats`, and alertname is not — with it, rows would number nearly the
occurrences themselves (200 alertnames × 30 services at ~460 occurrences an hour, in bench/stats.py). The top lists
need alertname × service, so they get their own narrow table. Hour rows make partial days and local-time buckets
answerable; day rows keep a month to ~30 × (services × severities × levels) rows. Filters without a column (label
matchers, `acked`, alertname for summary and trends, severity or level for top) read raw rows only.

What is in them: only *settled* occurrences — resolved, with `resolved_at` before the watermark W. Resolution is
final: after it an occurrence's `starts_at`, level, acks and escalations never change (lifecycle actions refuse
resolved occurrences; only firing snapshots move `startsAt`). What can still change is the outcome of its
notifications, which finish within `delivery.retry.give_up_after` (+ the last backoff): W trails the clock by that
(`settle_delay`). So for every hour, its rows hold exactly the settled occurrences of that hour, and a reader adds
the rest — firing, resolved at or after W — from raw rows found by two indexes (`status`, the partial
`ix_alerts_resolved_at`), plus the partial hours at the edges of its period. Counts, sums and means are exact;
percentiles are exact or come from the duration sketches (write_sketches.py, within 0.5 %; read_percentiles.py);
the 61 histogram columns remain for periods that reach rolled-up days.

Refresh (write_refresh.py): moving W from W0 to W1 re-derives, in one write transaction, exactly the hours
holding an occurrence resolved in [W0, W1) — however old the hour (an alert that started 20 days ago and resolves
now changes that old hour) — with one INSERT … SELECT … GROUP BY per table. The first build walks all hours in
batches towards a fixed target W, which is published when the last batch is written.

Late news: a message about a settled occurrence that is attempted again (an operator's retry of a dead message)
changes that hour's notification counts; each refresh also re-derives the hours of settled occurrences with a
message attempted since the previous refresh (`ix_notifications_last_attempt_at`), so readers see it within one
refresh interval. Retention: hours before the newest rolled-up day (alert_rollups) are never read from here —
their raw rows may be gone — and the refresh deletes them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..config import Config
from ..store.models import (STATS_HIST_BUCKETS, Alert, AlertRollup, AlertStats, AlertStatsByAlert, AlertStatsRepeat,
                            AlertStatsSla, Notification, NotificationItem, ReceiverState)
from ..store.first_notified import first_notified_at
from ..store.sql import insert_ignore
from ..store.types import UTCDateTime
from . import write_rollups as rollups
from . import write_sketches as sketches

UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
SPAN_HOUR, SPAN_DAY = 1, 24
STATE_KEY = "stats.aggregates"
MAX_FLAP_WINDOW = DAY  # repeats are recorded up to this gap; a longer flap_window reads raw rows
NOTIFICATION_STATUSES = ("pending", "sending", "sent", "failed", "dead")
assert len(rollups.KEYS) == STATS_HIST_BUCKETS, "alert_stats has one column per rollups bucket"

_alerts = Alert.__table__
_stats = AlertStats.__table__
_by_alert = AlertStatsByAlert.__table__
_repeats = AlertStatsRepeat.__table__
_sla = AlertStatsSla.__table__
_items = NotificationItem.__table__
_messages = Notification.__table__
_state = ReceiverState.__table__
_rollups = AlertRollup.__table__

MTTA_BUCKETS = tuple(f"mtta_b{i:02d}" for i in range(STATS_HIST_BUCKETS))
MTTR_BUCKETS = tuple(f"mttr_b{i:02d}" for i in range(STATS_HIST_BUCKETS))
STATS_COUNTERS = ("occurrences", "acked", "escalated", "escalations", "mtta_count", "mttr_count",
                  *(f"notifications_{s}" for s in NOTIFICATION_STATUSES))
STATS_SUMS = ("mtta_sum", "mttr_sum")


def settle_delay(config: Config) -> dt.timedelta:
    """How long after its resolution an occurrence's notifications may still change: retries stop after
    give_up_after; the last attempt may come one backoff later."""
    retry = config.delivery.retry
    return retry.give_up_after + retry.max_backoff + dt.timedelta(minutes=5)


# --- SQL pieces shared with the read side (read_summary.py, read_top.py) -----------------------------------


def seconds_between(conn: Connection, start, end):
    """end − start in seconds, as SQL."""
    if conn.dialect.name == "postgresql":
        return sa.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def mtta_expr(conn: Connection):
    raw = seconds_between(conn, first_notified_at(), _alerts.c.first_acked_at)
    return sa.case((raw < 0, 0.0), else_=raw)


def mttr_expr(conn: Connection):
    end = sa.func.coalesce(_alerts.c.ends_at, _alerts.c.resolved_at)
    raw = seconds_between(conn, _alerts.c.starts_at, end)
    return sa.case((raw < 0, 0.0), else_=raw)


def mtta_present():
    # The ack first: the first notification's lookup is made only for the occurrences that were acknowledged.
    return sa.and_(_alerts.c.first_acked_at.is_not(None), first_notified_at().is_not(None))


def mttr_present():
    return sa.and_(_alerts.c.status == "resolved",
                   sa.or_(_alerts.c.ends_at.is_not(None), _alerts.c.resolved_at.is_not(None)))


# `status = 'resolved'` as a literal: SQLite uses a partial index only when the query repeats its WHERE literally.
RESOLVED = sa.text("alerts.status = 'resolved'")
FIRING = sa.text("alerts.status = 'firing'")


def settled(watermark: dt.datetime):
    """The occurrences the aggregates hold at this watermark."""
    return sa.and_(RESOLVED, _alerts.c.resolved_at < watermark)


def truncate(conn: Connection, column, unit: str):
    """The UTC hour or day of a timestamp column, stored the way the column type stores it."""
    if conn.dialect.name == "postgresql":
        return sa.func.timezone("UTC", sa.func.date_trunc(unit, sa.func.timezone("UTC", column)))
    return sa.func.strftime("%Y-%m-%d %H:00:00.000000" if unit == "hour" else "%Y-%m-%d 00:00:00.000000", column)


def bucket_index(value):
    """The rollups bucket (0…60) of a duration in seconds, as SQL: a binary search over the bounds, six
    comparisons deep. NULL stays NULL."""
    bounds = rollups.BOUNDS

    def search(lo: int, hi: int):
        if lo == hi:
            return sa.literal(lo)
        mid = (lo + hi) // 2
        return sa.case((value <= bounds[mid], search(lo, mid)), else_=search(mid + 1, hi))

    return sa.case((value.is_(None), sa.null()), else_=search(0, STATS_HIST_BUCKETS - 1))


def floor_hour(t: dt.datetime) -> dt.datetime:
    t = t.astimezone(UTC)
    return t.replace(minute=0, second=0, microsecond=0)


def ceil_hour(t: dt.datetime) -> dt.datetime:
    f = floor_hour(t)
    return f if f == t else f + HOUR


def floor_day(t: dt.datetime) -> dt.datetime:
    return floor_hour(t).replace(hour=0)


def ceil_day(t: dt.datetime) -> dt.datetime:
    f = floor_day(t)
    return f if f == t else f + DAY


# --- state -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class State:
    watermark: dt.datetime | None = None  # published: every hour's rows hold settled(watermark)
    target: dt.datetime | None = None  # the first build's watermark, while it runs
    cursor: dt.datetime | None = None  # the first build has written every hour before this
    refreshed_at: dt.datetime | None = None  # the clock of the last refresh: deliveries since then are news

    def to_json(self) -> str:
        iso = lambda t: None if t is None else t.astimezone(UTC).isoformat()  # noqa: E731
        return json.dumps({"watermark": iso(self.watermark), "target": iso(self.target), "cursor": iso(self.cursor),
                           "refreshed_at": iso(self.refreshed_at)})

    @classmethod
    def from_json(cls, text: str | None) -> "State":
        if not text:
            return cls()
        data = json.loads(text)
        parse = lambda v: None if v is None else dt.datetime.fromisoformat(v).astimezone(UTC)  # noqa: E731
        return cls(parse(data.get("watermark")), parse(data.get("target")), parse(data.get("cursor")),
                   parse(data.get("refreshed_at")))


def read_state(conn: Connection) -> State:
    return State.from_json(conn.execute(sa.select(_state.c.value).where(_state.c.key == STATE_KEY)).scalar())


def lock_state(conn: Connection, now: dt.datetime) -> State:
    """The state, locked for this write transaction (PostgreSQL: FOR UPDATE; SQLite's writer lock is held):
    two engines refreshing at once take turns, and the second finds the work done."""
    conn.execute(insert_ignore(conn, _state).values(key=STATE_KEY, value=State().to_json(), updated_at=now))
    query = sa.select(_state.c.value).where(_state.c.key == STATE_KEY)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return State.from_json(conn.execute(query).scalar())


def write_state(conn: Connection, state: State, now: dt.datetime) -> None:
    conn.execute(sa.update(_state).where(_state.c.key == STATE_KEY).values(value=state.to_json(), updated_at=now))


def rollup_floor(conn: Connection) -> dt.datetime | None:
    """The first instant not rolled up by retention (the day after the newest rollup day), or None."""
    day = conn.execute(sa.select(sa.func.max(_rollups.c.day))).scalar()
    if day is None:
        return None
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    return dt.datetime.combine(day, dt.time(0), tzinfo=UTC) + DAY


# --- refresh -----------------------------------------------------------------------------------------------


def touched_hours(conn: Connection, since: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    """The UTC hours (of `starts_at`) of the occurrences resolved in [since, until): an index range."""
    hour = sa.type_coerce(truncate(conn, _alerts.c.starts_at, "hour"), UTCDateTime())
    rows = conn.execute(sa.select(hour).where(RESOLVED, _alerts.c.resolved_at >= since,
                                              _alerts.c.resolved_at < until).distinct())
    return sorted({floor_hour(h) for (h,) in rows})


def redelivered_hours(conn: Connection, since: dt.datetime, watermark: dt.datetime) -> list[dt.datetime]:
    """The hours of settled occurrences with a message attempted at or after `since`: a delivery that finished
    after its occurrence settled (a retry by hand of a dead message, say) changes that hour's counts."""
    m, i, c = _messages.c, _items.c, _alerts.c
    hour = sa.type_coerce(truncate(conn, c.starts_at, "hour"), UTCDateTime())
    rows = conn.execute(sa.select(hour).select_from(
        _messages.join(_items, i.notification_id == m.id).join(_alerts, c.id == i.alert_id))
        .where(m.last_attempt_at >= since, settled(watermark)).distinct())
    return sorted({floor_hour(h) for (h,) in rows})


def first_start(conn: Connection) -> dt.datetime | None:
    return conn.execute(sa.select(sa.func.min(_alerts.c.starts_at))).scalar()


def last_start(conn: Connection) -> dt.datetime | None:
    return conn.execute(sa.select(sa.func.max(_alerts.c.starts_at))).scalar()


def batch_end(conn: Connection, cursor: dt.datetime, rows: int, *, max_hours: int) -> dt.datetime:
    """The end of a first-build batch from `cursor`: the hour after the one holding the `rows`-th occurrence
    (one index range), at least one hour, at most `max_hours`."""
    nth = conn.execute(sa.select(_alerts.c.starts_at).where(_alerts.c.starts_at >= cursor)
                       .order_by(_alerts.c.starts_at).offset(rows).limit(1)).scalar()
    end = cursor + HOUR * max_hours if nth is None else max(cursor + HOUR, floor_hour(nth) + HOUR)
    return min(end, cursor + HOUR * max_hours)


def _ranges(hours: Iterable[dt.datetime]) -> list[tuple[dt.datetime, dt.datetime]]:
    """Sorted hours merged into [start, end) ranges."""
    out: list[list[dt.datetime]] = []
    for h in sorted(set(hours)):
        if out and out[-1][1] == h:
            out[-1][1] = h + HOUR
        else:
            out.append([h, h + HOUR])
    return [(a, b) for a, b in out]


def _in_ranges(column, ranges: Sequence[tuple[dt.datetime, dt.datetime]]):
    return sa.or_(*[sa.and_(column >= a, column < b) for a, b in ranges])


def rebuild_hours(conn: Connection, hours: Sequence[dt.datetime], watermark: dt.datetime) -> int:
    """Replace the rows of these hours (and of the days holding them) by what settled(watermark) holds now:
    one DELETE and one INSERT … SELECT … GROUP BY per table. Returns the occurrences aggregated."""
    ranges = _ranges(floor_hour(h) for h in hours)
    if not ranges:
        return 0
    total = 0
    for part in _chunks(ranges, 200):
        total += _rebuild_hour_rows(conn, part, watermark)
    days = sorted({floor_day(h) for a, b in ranges for h in _hours_between(a, b)})
    for part in _chunks(_day_ranges(days), 200):
        _rebuild_day_rows(conn, part)
    return total


def _hours_between(a: dt.datetime, b: dt.datetime) -> Iterable[dt.datetime]:
    while a < b:
        yield a
        a += HOUR


def _day_ranges(days: Sequence[dt.datetime]) -> list[tuple[dt.datetime, dt.datetime]]:
    out: list[list[dt.datetime]] = []
    for d in days:
        if out and out[-1][1] == d:
            out[-1][1] = d + DAY
        else:
            out.append([d, d + DAY])
    return [(a, b) for a, b in out]


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _rebuild_hour_rows(conn: Connection, ranges, watermark: dt.datetime) -> int:
    c = _alerts.c
    conn.execute(sa.delete(_stats).where(_stats.c.span == SPAN_HOUR, _in_ranges(_stats.c.bucket, ranges)))
    conn.execute(sa.delete(_by_alert).where(_by_alert.c.span == SPAN_HOUR, _in_ranges(_by_alert.c.bucket, ranges)))
    conn.execute(sa.delete(_repeats).where(_in_ranges(_repeats.c.starts_at, ranges)))
    conn.execute(sa.delete(_sla).where(_sla.c.span == SPAN_HOUR, _in_ranges(_sla.c.bucket, ranges)))
    where = [settled(watermark), _in_ranges(c.starts_at, ranges)]
    _insert_sla_hours(conn, where)
    sketches.rebuild_hours(conn, ranges, truncate(conn, c.starts_at, "hour"), where,
                           {"mtta": (mtta_expr(conn), mtta_present()), "mttr": (mttr_expr(conn), mttr_present())})

    # One row per settled occurrence with everything the sums need, computed once (MATERIALIZED: SQLite would
    # otherwise inline the bucket search into each of the 122 histogram sums).
    mtta = sa.case((mtta_present(), mtta_expr(conn)), else_=sa.null())
    mttr = sa.case((mttr_present(), mttr_expr(conn)), else_=sa.null())
    rows = sa.select(
        c.id, truncate(conn, c.starts_at, "hour").label("hour"), c.service, c.severity, c.level, c.alertname,
        sa.case((c.first_acked_at.is_not(None), 1), else_=0).label("acked"), c.escalation_count,
        mtta.label("mtta"), mttr.label("mttr"), bucket_index(mtta).label("mtta_i"), bucket_index(mttr).label("mttr_i"),
        seconds_between(conn, c.starts_at, sa.func.coalesce(c.ends_at, c.resolved_at)).label("duration"),
    ).where(*where).cte("settled_rows").prefix_with("MATERIALIZED")
    m = _messages.c
    notes = (sa.select(_items.c.alert_id, *[sa.func.sum(sa.case((m.status == s, 1), else_=0)).label(s)
                                            for s in NOTIFICATION_STATUSES])
             .select_from(_items.join(_messages, m.id == _items.c.notification_id))
             .where(_items.c.alert_id.in_(sa.select(rows.c.id)))
             .group_by(_items.c.alert_id).cte("settled_notes").prefix_with("MATERIALIZED"))
    r = rows.c
    keys = (r.hour, r.service, r.severity, r.level)
    values = [sa.literal(SPAN_HOUR), *keys, sa.func.count(), sa.func.sum(r.acked),
              sa.func.sum(sa.case((r.escalation_count > 0, 1), else_=0)), sa.func.sum(r.escalation_count),
              sa.func.count(r.mtta), sa.func.count(r.mttr),
              *[sa.func.coalesce(sa.func.sum(getattr(notes.c, s)), 0) for s in NOTIFICATION_STATUSES],
              sa.func.coalesce(sa.func.sum(r.mtta), 0.0), sa.func.coalesce(sa.func.sum(r.mttr), 0.0),
              *[sa.func.sum(sa.case((r.mtta_i == i, 1), else_=0)) for i in range(STATS_HIST_BUCKETS)],
              *[sa.func.sum(sa.case((r.mttr_i == i, 1), else_=0)) for i in range(STATS_HIST_BUCKETS)]]
    names = ["span", "bucket", "service", "severity", "level", *STATS_COUNTERS, *STATS_SUMS,
             *MTTA_BUCKETS, *MTTR_BUCKETS]
    select = (sa.select(*values).select_from(rows.outerjoin(notes, notes.c.alert_id == r.id)).group_by(*keys))
    conn.execute(sa.insert(_stats).from_select(names, select))

    noisy = sa.func.sum(sa.case((r.acked == 0, 1), else_=0))
    by_alert = (sa.select(sa.literal(SPAN_HOUR), r.hour, r.alertname, r.service, sa.func.count(),
                          sa.func.sum(r.escalation_count), noisy, sa.func.sum(r.duration), sa.func.max(r.duration))
                .group_by(r.hour, r.alertname, r.service))
    conn.execute(sa.insert(_by_alert).from_select(
        ["span", "bucket", "alertname", "service", "occurrences", "escalations", "noisy", "duration_sum",
         "duration_max"], by_alert))

    previous = _alerts.alias("previous")
    prev_start = (sa.select(sa.func.max(previous.c.starts_at))
                  .where(previous.c.fingerprint == c.fingerprint, previous.c.starts_at < c.starts_at)
                  .scalar_subquery())
    gaps = sa.select(c.id, c.fingerprint, c.starts_at,
                     seconds_between(conn, prev_start, c.starts_at).label("gap")).where(*where).subquery()
    conn.execute(sa.insert(_repeats).from_select(
        ["alert_id", "fingerprint", "starts_at", "gap_seconds"],
        sa.select(gaps.c.id, gaps.c.fingerprint, gaps.c.starts_at, gaps.c.gap)
        .where(gaps.c.gap.is_not(None), gaps.c.gap <= MAX_FLAP_WINDOW.total_seconds())))
    return conn.execute(sa.select(sa.func.coalesce(sa.func.sum(_stats.c.occurrences), 0)).where(
        _stats.c.span == SPAN_HOUR, _in_ranges(_stats.c.bucket, ranges))).scalar_one()


def _insert_sla_hours(conn: Connection, where: list) -> None:
    """alert_stats_sla's hour rows: the GROUP BY read_sla.py runs over raw rows, per hour. `escalate: false`
    occurrences are left out: they are never in an SLA population."""
    c = _alerts.c
    hour = truncate(conn, c.starts_at, "hour")
    keys = [hour, c.route, c.service, c.severity, c.level, sa.case((c.acked_at.is_(None), 1), else_=0),
            sa.case((c.first_acked_at.is_not(None), 1), else_=0), c.sla_flags]
    conn.execute(sa.insert(_sla).from_select(
        ["span", "bucket", "route", "service", "severity", "level", "unacked", "ever_acked", "sla_flags",
         "occurrences"],
        sa.select(sa.literal(SPAN_HOUR), *keys, sa.func.count()).where(*where, c.escalate).group_by(*keys)))


def _rebuild_day_rows(conn: Connection, ranges) -> None:
    """Day rows = the sums of their hour rows."""
    for table, keys, summed, maxed in (
            (_stats, ("service", "severity", "level"), STATS_COUNTERS + STATS_SUMS + MTTA_BUCKETS + MTTR_BUCKETS, ()),
            (_by_alert, ("alertname", "service"), ("occurrences", "escalations", "noisy", "duration_sum"),
             ("duration_max",)),
            (_sla, ("route", "service", "severity", "level", "unacked", "ever_acked", "sla_flags"), ("occurrences",),
             ())):
        t = table.c
        conn.execute(sa.delete(table).where(t.span == SPAN_DAY, _in_ranges(t.bucket, ranges)))
        day = truncate(conn, t.bucket, "day")
        select = (sa.select(sa.literal(SPAN_DAY), day, *[t[k] for k in keys], *[sa.func.sum(t[n]) for n in summed],
                            *[sa.func.max(t[n]) for n in maxed])
                  .where(t.span == SPAN_HOUR, _in_ranges(t.bucket, ranges)).group_by(day, *[t[k] for k in keys]))
        conn.execute(sa.insert(table).from_select(["span", "bucket", *keys, *summed, *maxed], select))
    sketches.rebuild_days(conn, ranges, lambda column: truncate(conn, column, "day"))


def drop_before(conn: Connection, floor: dt.datetime) -> int:
    """Delete the rows of hours before `floor` (rolled up by retention: never read from here again)."""
    n = 0
    for table in (_stats, _by_alert, _sla):
        for span in (SPAN_HOUR, SPAN_DAY):  # span first: a range of the primary key, cheap when nothing is left
            n += conn.execute(sa.delete(table).where(table.c.span == span, table.c.bucket < floor)).rowcount
    n += conn.execute(sa.delete(_repeats).where(_repeats.c.starts_at < floor)).rowcount
    return n + sketches.drop_before(conn, floor)
