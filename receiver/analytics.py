"""Pure pieces of the statistics: time buckets in a time zone (zero-filled), and the service health score.

The health score of a service over a period, 0–100, each factor in [0, 1] so the score cannot leave 0–100:

    score = 100 × (0.30·R + 0.25·(1 − C) + 0.25·M + 0.20·(1 − E))

    R  resolved ratio: resolved occurrences / all occurrences (what still fires counts against it)
    C  critical weight: occurrences that started at L1 (critical) / all occurrences
    M  repair speed: 1 / (1 + mean MTTR / 1 h) — 1 when fixed at once, ½ at one hour, → 0 as it grows
    E  escalation rate: occurrences escalated at least once / all occurrences

M is 0 when nothing was resolved. A service with no occurrences in the period scores 100. Bands: excellent ≥ 90, good ≥ 75, fair ≥ 60,
poor ≥ 40, critical below.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from typing import Any, Iterable
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
WEIGHTS = {"resolved": 0.30, "critical": 0.25, "repair": 0.25, "escalation": 0.20}
BANDS = ((90, "excellent"), (75, "good"), (60, "fair"), (40, "poor"), (0, "critical"))


# --- buckets -----------------------------------------------------------------------------------------------


def bucket_starts(since: dt.datetime, until: dt.datetime, interval: str, tz: dt.tzinfo) -> list[dt.datetime]:
    """The starts of every hour or day bucket, in `tz`, that overlaps [since, until): local midnights for days
    (23- and 25-hour days across DST changes), local hour boundaries for hours."""
    local = since.astimezone(tz)
    if interval == "day":
        day = local.date()
        starts = []
        while True:
            start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
            if start >= until:
                break
            starts.append(start)
            day += dt.timedelta(days=1)
        return starts
    if interval == "hour":
        first = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        starts = []
        t = first
        while t < until:
            starts.append(t.astimezone(tz))
            t += dt.timedelta(hours=1)
        return starts
    raise ValueError("interval must be hour or day")


def fill(slots: Iterable[tuple[int, str, int]], starts: list[dt.datetime], slot_seconds: int,
         until: dt.datetime) -> dict[str, list[int]]:
    """Counts per (15-minute UTC slot, key) into the buckets that begin at `starts`, zero-filled per key."""
    edges = [s.timestamp() for s in starts]
    end = until.timestamp()
    series: dict[str, list[int]] = {}
    for slot, key, count in slots:
        t = slot * slot_seconds
        if not edges or t < edges[0] or t >= end:
            continue
        i = bisect.bisect_right(edges, t) - 1
        series.setdefault(key, [0] * len(edges))[i] += count
    return dict(sorted(series.items()))


def zone(name: str | None) -> dt.tzinfo:
    """`tz` query values: an IANA name (Europe/Paris); None or UTC for UTC. KeyError for unknown names."""
    if not name or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ValueError, OSError) as exc:
        raise KeyError(name) from exc


# --- health ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HealthInputs:
    total: int
    resolved: int
    critical: int
    escalated: int
    mttr_mean_seconds: float | None


def health(inputs: HealthInputs) -> dict[str, Any]:
    if inputs.total == 0:
        factors = {"resolved": 1.0, "critical": 0.0, "repair": 1.0, "escalation": 0.0}
    else:
        mttr = inputs.mttr_mean_seconds
        factors = {
            "resolved": inputs.resolved / inputs.total,
            "critical": inputs.critical / inputs.total,
            "repair": 1.0 / (1.0 + mttr / 3600.0) if mttr is not None else 0.0,
            "escalation": inputs.escalated / inputs.total,
        }
    score = 100 * (WEIGHTS["resolved"] * factors["resolved"] + WEIGHTS["critical"] * (1 - factors["critical"])
                   + WEIGHTS["repair"] * factors["repair"] + WEIGHTS["escalation"] * (1 - factors["escalation"]))
    score = round(min(100.0, max(0.0, score)), 1)
    return {"score": score, "band": band(score),
            "inputs": {"alerts": inputs.total, "resolved": inputs.resolved, "critical": inputs.critical,
                       "escalated": inputs.escalated, "mttr_mean_seconds": inputs.mttr_mean_seconds},
            "factors": {k: round(v, 4) for k, v in factors.items()}, "weights": WEIGHTS}


def band(score: float) -> str:
    for floor, name in BANDS:
        if score >= floor:
            return name
    return "critical"
