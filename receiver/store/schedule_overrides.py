"""Schedule overrides in the database (oncall_models.ScheduleOverride): made, listed and deleted through the API,
read by whoever asks who is on call (engine/oncall.py takes them as `Override`s). Overrides are made by hand, so a
schedule has few: reading every one not yet ended is cheap."""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain import Override
from .oncall_models import ScheduleOverride

_t = ScheduleOverride.__table__
_COLUMNS = (_t.c.id, _t.c.schedule, _t.c.person, _t.c.start_at, _t.c.end_at)


class EmptyOverride(ValueError):
    """An override that would hold for no time at all: its end is not after its (effective) start."""


def overlapping(conn: Connection, since: dt.datetime, until: dt.datetime | None,
                schedules: Sequence[str] | None = None) -> list[Override]:
    """Every override that holds at some instant of [since, until) (`until` None: any time after `since`), oldest
    made first: one indexed query."""
    where = [_t.c.end_at > since]
    if until is not None:
        where.append(_t.c.start_at < until)
    if schedules is not None:
        where.append(_t.c.schedule.in_(list(schedules)))
    rows = conn.execute(sa.select(*_COLUMNS).where(*where).order_by(_t.c.id))
    return [Override(r.id, r.schedule, r.person, r.start_at, r.end_at) for r in rows]


def create(conn: Connection, *, schedule: str, person: str, start: dt.datetime, end: dt.datetime,
           now: dt.datetime, actor: str | None) -> Override:
    """Store an override in the caller's write transaction. A start in the past holds from now (the past is not
    rewritten: pages already sent went to whoever was on call then). Raises EmptyOverride when end <= that start."""
    if end <= start:
        raise EmptyOverride(f"end ({_iso(end)}) must be after start ({_iso(start)})")
    start = max(start, now)
    if end <= start:
        raise EmptyOverride(f"end ({_iso(end)}) is not in the future: an override holds from now at the earliest")
    new_id = conn.execute(sa.insert(_t).values(schedule=schedule, person=person, start_at=start, end_at=end,
                                               created_at=now, created_by=actor).returning(_t.c.id)).scalar_one()
    return Override(new_id, schedule, person, start, end)


def listing(conn: Connection, schedule: str, *, since: dt.datetime) -> list[dict[str, Any]]:
    """The schedule's overrides not yet ended at `since` (holding now, or to come), earliest start first."""
    rows = conn.execute(sa.select(*_COLUMNS, _t.c.created_at, _t.c.created_by)
                        .where(_t.c.schedule == schedule, _t.c.end_at > since)
                        .order_by(_t.c.start_at, _t.c.id))
    return [as_dict(Override(r.id, r.schedule, r.person, r.start_at, r.end_at), created_at=r.created_at,
                    created_by=r.created_by) for r in rows]


def delete(conn: Connection, schedule: str, override_id: int) -> bool:
    """Delete one override of this schedule; False when there is none with this id (or it is another schedule's)."""
    result = conn.execute(sa.delete(_t).where(_t.c.id == override_id, _t.c.schedule == schedule))
    return result.rowcount > 0


def purge_ended(conn: Connection, before: dt.datetime) -> int:
    """Retention: delete every override that ended before `before` (one statement); how many went."""
    return conn.execute(sa.delete(_t).where(_t.c.end_at < before)).rowcount


def as_dict(override: Override, *, created_at: dt.datetime, created_by: str | None) -> dict[str, Any]:
    """An override as the API answers it."""
    return {"id": override.id, "schedule": override.schedule, "person": override.person,
            "start": _iso(override.start), "end": _iso(override.end), "created_at": _iso(created_at),
            "created_by": created_by}


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
