"""Duration sketches beside the pre-aggregates (table alert_stats_sketch, store/sketch_models.py): the MTTA and
MTTR of settled occurrences counted per UTC hour and day of `starts_at` and per log bin, DDSketch-style.

Bin scheme (fixed forever: stored rows name their bins by it): relative accuracy ALPHA = 0.5 %, γ = (1+α)/(1−α);
a duration v > MIN_SECONDS falls in bin i = ⌈ln v / ln γ⌉, the values in (γ^(i−1), γ^i]; every value in that bin
lies within α of 2γ^i/(γ+1) (relative). Durations ≤ MIN_SECONDS (1 ms; MTTA can be 0) share ZERO_BIN. Each row
also keeps the smallest and largest value of its bin: a period's min and max are exact, and a bin holding one
distinct value answers it exactly. Bins cover all services, severities and levels together: a reader with one of
those filters reads raw rows instead (read_percentiles.py).

Spans: hour rows (1), 6-hour block rows (6, blocks starting at 00, 06, 12 and 18 UTC) and day rows (24); blocks and
days are the sums of their hour rows. Blocks exist because a period's partial days are read in hours: 12 hours
of hour rows hold ~3 times the bins of their 2 block rows (each hour's values spread over most of the bins), and
merging bins is the sketch read's cost. Rows are rebuilt, deleted and dropped with alert_stats's (write_aggregates.py
calls `rebuild_hours`, `rebuild_days` and `drop_before` from its own).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..store.models import Alert
from ..store.sketch_models import AlertStatsSketch

ALPHA = 0.005
GAMMA = (1 + ALPHA) / (1 - ALPHA)
LN_GAMMA = math.log(GAMMA)
MIN_SECONDS = 0.001
ZERO_BIN = -1_000_000
METRICS = ("mtta", "mttr")
SPAN_HOUR, SPAN_BLOCK, SPAN_DAY = 1, 6, 24
BLOCK = dt.timedelta(hours=6)

_sketch = AlertStatsSketch.__table__
_alerts = Alert.__table__


def bin_of(seconds: float) -> int:
    """The bin of a duration (Python: for raw rows merged into a sketch read from the table)."""
    if seconds <= MIN_SECONDS:
        return ZERO_BIN
    return math.ceil(math.log(seconds) / LN_GAMMA)


def bin_sql(value):
    """The same, as SQL (SQLite ≥ 3.35 and PostgreSQL both have ln and ceil)."""
    return sa.case((value <= MIN_SECONDS, ZERO_BIN),
                   else_=sa.cast(sa.func.ceil(sa.func.ln(value) / LN_GAMMA), sa.Integer))


def representative(bin_: int, low: float, high: float) -> float:
    """The value a bin stands for: 2γ^i/(γ+1), within α of every value of the bin, moved into [low, high] (the
    bin's smallest and largest value), which only brings it closer to them."""
    if bin_ == ZERO_BIN:
        return low
    return min(high, max(low, 2 * GAMMA ** bin_ / (GAMMA + 1)))


def _in_ranges(column, ranges: Sequence[tuple[dt.datetime, dt.datetime]]):
    return sa.or_(*[sa.and_(column >= a, column < b) for a, b in ranges])


def rebuild_hours(conn: Connection, ranges, hour, where: list, values: dict) -> None:
    """Replace the hour rows of `ranges`: `hour` is the SQL of an occurrence's UTC hour, `where` selects the
    settled occurrences of those hours, `values` maps metric → (SQL value, SQL presence condition)."""
    t = _sketch.c
    conn.execute(sa.delete(_sketch).where(t.span == SPAN_HOUR, _in_ranges(t.bucket, ranges)))
    for metric in METRICS:
        value, present = values[metric]
        rows = sa.select(hour.label("hour"), value.label("v")).where(*where, present).subquery()
        b = bin_sql(rows.c.v).label("b")
        select = (sa.select(sa.literal(SPAN_HOUR), rows.c.hour, sa.literal(metric), b, sa.func.count(),
                            sa.func.min(rows.c.v), sa.func.max(rows.c.v))
                  .group_by(rows.c.hour, sa.text("b")))
        conn.execute(sa.insert(_sketch).from_select(
            ["span", "bucket", "metric", "bin", "count", "min_value", "max_value"], select))


def block_start(conn: Connection, column):
    """The start of the 6-hour UTC block of a timestamp column, stored the way the column type stores it."""
    if conn.dialect.name == "postgresql":
        utc = sa.func.timezone("UTC", column)
        hours_in = sa.cast(sa.extract("hour", utc), sa.Integer) % 6
        return sa.func.timezone("UTC", sa.func.date_trunc("hour", utc) - sa.func.make_interval(0, 0, 0, 0, hours_in))
    hour = sa.cast(sa.func.strftime("%H", column), sa.Integer)
    return sa.func.strftime("%Y-%m-%d ", column).concat(sa.func.printf("%02d", hour - hour % 6)).concat(
        ":00:00.000000")


def rebuild_days(conn: Connection, ranges, day) -> None:
    """Replace the block and day rows of `ranges` (whole UTC days) by the sums of their hour rows; `day(column)`
    is the SQL of a UTC day."""
    t = _sketch.c
    for span, start in ((SPAN_BLOCK, block_start(conn, t.bucket)), (SPAN_DAY, day(t.bucket))):
        conn.execute(sa.delete(_sketch).where(t.span == span, _in_ranges(t.bucket, ranges)))
        select = (sa.select(sa.literal(span), start, t.metric, t.bin, sa.func.sum(t.count), sa.func.min(t.min_value),
                            sa.func.max(t.max_value))
                  .where(t.span == SPAN_HOUR, _in_ranges(t.bucket, ranges)).group_by(start, t.metric, t.bin))
        conn.execute(sa.insert(_sketch).from_select(
            ["span", "bucket", "metric", "bin", "count", "min_value", "max_value"], select))


def spans(hour_ranges: Sequence[tuple[dt.datetime, dt.datetime]],
          day_ranges: Sequence[tuple[dt.datetime, dt.datetime]]) -> list[tuple[int, dt.datetime, dt.datetime]]:
    """(span, start, end) ranges of rows covering these whole-hour and whole-day ranges (UTC): day rows, then the
    6-hour blocks inside the hour ranges, then the hours left at their edges."""
    out = [(SPAN_DAY, a, b) for a, b in day_ranges]
    for a, b in hour_ranges:
        first = a + dt.timedelta(hours=-a.astimezone(dt.timezone.utc).hour % 6)
        last = b - dt.timedelta(hours=b.astimezone(dt.timezone.utc).hour % 6)
        if first < last:
            out += [(SPAN_BLOCK, first, last)] + [(SPAN_HOUR, x, y) for x, y in ((a, first), (last, b)) if x < y]
        else:
            out.append((SPAN_HOUR, a, b))
    return out


def drop_before(conn: Connection, floor: dt.datetime) -> int:
    n = 0
    for span in (SPAN_HOUR, SPAN_BLOCK, SPAN_DAY):
        n += conn.execute(sa.delete(_sketch).where(_sketch.c.span == span, _sketch.c.bucket < floor)).rowcount
    return n
