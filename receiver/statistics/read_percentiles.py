"""MTTA/MTTR distributions (count, mean, min, p50, p90, max) of a period, and which method answered them.

Whatever the filter, a period's percentiles agree (issue #19):
- `exact`: the durations of the matching occurrences read from raw rows, sorted by the database (PostgreSQL:
  percentile_cont), interpolated linearly between the closest ranks (numpy's default). Used whenever the
  period holds at most EXACT_MAX durations of the metric, for every filter the sketches cannot answer (service,
  severity, level: sketches cover all of them together), and when no pre-aggregates exist.
- `sketch`: larger periods without such a filter merge the sketch rows of their whole hours and days
  (write_sketches.py: log bins of relative accuracy α = 0.5 %, with each bin's min and max) with the raw rows the
  aggregates do not hold. The values of the two ranks the exact percentile interpolates between are each read
  within α, so the answer is within 0.5 % of the exact one; min and max are exact; count and mean are exact.
- `histogram`: when days rolled up by retention take part (their raw rows are gone, alert_rollups keeps 61-bucket
  histograms only), as before issue #19: off by less than one bucket (< 29 %); min and max are null.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..store.models import Alert
from ..store.queries import AlertFilter, where_clauses
from ..store.sketch_models import AlertStatsSketch
from . import read_aggregates as reads
from . import write_sketches as sketches
from .write_aggregates import mtta_expr, mtta_present, mttr_expr, mttr_present

EXACT_MAX = 20_000  # durations read raw at most; above, the sketches answer (when the filter lets them)
EXACT, SKETCH, HISTOGRAM = "exact", "sketch", "histogram"

_sketch = AlertStatsSketch.__table__
_alerts = Alert.__table__


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
    min: float | None = None
    max: float | None = None
    method: str = EXACT

    def as_dict(self) -> dict[str, Any]:
        r = lambda v: None if v is None else round(v, 3)  # noqa: E731
        return {"count": self.count, "mean": r(self.mean), "min": r(self.min), "p50": r(self.p50),
                "p90": r(self.p90), "max": r(self.max), "method": self.method}


def _f(value) -> float | None:
    return None if value is None else float(value)


def distribution(conn: Connection, value, present, where: Sequence[Any]) -> Distribution:
    """The exact distribution of `value` over the rows matching `where` and `present`."""
    if conn.dialect.name == "postgresql":
        row = conn.execute(sa.select(
            sa.func.count(), sa.func.avg(value), sa.func.min(value), sa.func.max(value),
            sa.func.percentile_cont(0.5).within_group(value), sa.func.percentile_cont(0.9).within_group(value),
        ).where(*where, present)).one()
        return Distribution(row[0], _f(row[1]), _f(row[4]), _f(row[5]), _f(row[2]), _f(row[3]))
    # SQLite has no percentile aggregate: the values, sorted by SQLite.
    values = [float(v) for v in conn.execute(
        sa.select(value.label("v")).where(*where, present).order_by(sa.text("v"))).scalars()]
    if not values:
        return Distribution(0, None, None, None)
    return Distribution(len(values), sum(values) / len(values), interpolate(values, 0.5), interpolate(values, 0.9),
                        values[0], values[-1])


# --- the sketch ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Sketch:
    """Merged sketch rows: bin → [count, smallest, largest]."""

    bins: dict[int, list] = dataclasses.field(default_factory=dict)

    def add_bin(self, bin_: int, count: int, low: float, high: float) -> None:
        b = self.bins.get(bin_)
        if b is None:
            self.bins[bin_] = [count, low, high]
        else:
            b[0] += count
            b[1] = min(b[1], low)
            b[2] = max(b[2], high)

    def add(self, seconds: float) -> None:
        self.add_bin(sketches.bin_of(seconds), 1, seconds, seconds)

    @property
    def count(self) -> int:
        return sum(b[0] for b in self.bins.values())

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """Linear interpolation between the closest ranks, each rank's value read as its bin's representative."""
        order = sorted(self.bins)
        n = self.count
        if n == 0:
            return [None] * len(qs)

        def value_at(rank: int) -> float:  # 0-based
            seen = 0
            for i in order:
                count, low, high = self.bins[i]
                if rank < seen + count:
                    if rank == seen and rank == 0:
                        return low
                    if rank == n - 1:
                        return high
                    return sketches.representative(i, low, high)
                seen += count
            raise AssertionError("rank beyond the sketch")

        out = []
        for q in qs:
            pos = (n - 1) * q
            lo = math.floor(pos)
            a, b = value_at(lo), value_at(min(lo + 1, n - 1))
            out.append(a + (b - a) * (pos - lo))
        return out

    def distribution(self, total: float) -> Distribution:
        n = self.count
        if n == 0:
            return Distribution(0, None, None, None, method=SKETCH)
        p50, p90 = self.quantiles((0.5, 0.9))
        order = sorted(self.bins)
        return Distribution(n, total / n, p50, p90, self.bins[order[0]][1], self.bins[order[-1]][2], method=SKETCH)


def read_sketches(conn: Connection, p: reads.Plan) -> dict[str, Sketch]:
    """The sketch rows of the plan's whole days, 6-hour blocks and hours, merged per metric (one GROUP BY)."""
    t = _sketch.c
    out = {m: Sketch() for m in sketches.METRICS}
    ranges = sketches.spans(p.hour_ranges(), p.day_ranges())
    rows = conn.execute(sa.select(t.metric, t.bin, sa.func.sum(t.count), sa.func.min(t.min_value),
                                  sa.func.max(t.max_value))
                        .where(sa.or_(*[sa.and_(t.span == span, t.bucket >= a, t.bucket < b)
                                        for span, a, b in ranges]))
                        .group_by(t.metric, t.bin))
    for metric, bin_, count, low, high in rows:
        out[metric].bins[int(bin_)] = [int(count), float(low), float(high)]
    return out


# --- which method answers ------------------------------------------------------------------------------------


def sketchable(f: AlertFilter) -> bool:
    """Sketches hold all services, severities and levels together: with one of those filters, read raw."""
    return not (f.services or f.severities or f.levels)


def merged(conn: Connection, f: AlertFilter, plan: reads.Plan | None, parts: list, raw_where: Sequence[Any],
           *, rolled: bool) -> tuple[Distribution, Distribution]:
    """MTTA and MTTR of a period some pre-aggregates (`parts`: StatsPart of the plan and of rollups) answer in
    part; `raw_where` selects the raw rows they do not hold."""
    metrics = {"mtta": (mtta_expr(conn), mtta_present()), "mttr": (mttr_expr(conn), mttr_present())}
    counts = {m: sum(getattr(p, f"{m}_count") for p in parts) for m in metrics}
    sums = {m: sum(getattr(p, f"{m}_sum") for p in parts) for m in metrics}
    out: dict[str, Distribution] = {}
    stored: dict[str, Sketch] | None = None
    for m, (value, present) in metrics.items():
        if rolled:
            hist = [sum(col) for col in zip(*(getattr(p, f"{m}_hist") for p in parts))]
            out[m] = _histogram(conn, value, present, raw_where, counts[m], sums[m], hist)
            continue
        if plan is not None and sketchable(f) and counts[m] > EXACT_MAX:
            if stored is None:
                stored = read_sketches(conn, plan)
            sketch = stored[m]
            if sketch.count == counts[m]:  # the sketch rows hold what alert_stats holds (else: rebuilding)
                total = sums[m]
                for (v,) in conn.execute(sa.select(value).where(*raw_where, present)):
                    v = float(v)
                    total += v
                    sketch.add(v)
                out[m] = sketch.distribution(total)
                continue
        out[m] = distribution(conn, value, present, exact_where(conn, f))
    return out["mtta"], out["mttr"]


def exact_where(conn: Connection, f: AlertFilter) -> list:
    """where_clauses(f); on PostgreSQL a service filter's period as row comparisons on (service, starts_at), which
    only ix_alerts_service_starts_at can answer: over 7 days the planner otherwise walks ix_alerts_starts_at (its
    rows lie in table order) and filters out the other services' 29 in 30 (measured on 300,000 of bench/stats.py's
    alerts: 12 ms instead of 2 ms)."""
    if conn.dialect.name != "postgresql" or not f.services or f.since is None or f.until is None:
        return where_clauses(f)
    c = _alerts.c
    since, until = (sa.literal(t, c.starts_at.type) for t in (f.since, f.until))
    periods = [sa.and_(c.service == s, sa.tuple_(c.service, c.starts_at) >= sa.tuple_(sa.literal(s), since),
                       sa.tuple_(c.service, c.starts_at) < sa.tuple_(sa.literal(s), until)) for s in f.services]
    return where_clauses(dataclasses.replace(f, since=None, until=None, services=())) + [sa.or_(*periods)]


def _histogram(conn: Connection, value, present, where: Sequence[Any], count: int, total: float,
               hist: list[int]) -> Distribution:
    """Aggregate sums and histogram plus the raw rows' values: exact count and mean, percentiles from buckets."""
    hist = list(hist)
    for (v,) in conn.execute(sa.select(value).where(*where, present)):
        v = float(v)
        count += 1
        total += v
        reads.observe(hist, v)
    if count == 0:
        return Distribution(0, None, None, None, method=HISTOGRAM)
    return Distribution(count, total / count, reads.percentile(hist, 0.5), reads.percentile(hist, 0.9),
                        method=HISTOGRAM)
