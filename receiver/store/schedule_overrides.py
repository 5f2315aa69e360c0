"""Schedule overrides in the database (oncall_models.ScheduleOverride): made, listed and deleted through the API,
read by whoever asks who is on call (engine/oncall.py takes them as `Override`s)."""

from __future__ import annotations

import datetime as dt
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain import Override
from .oncall_models import ScheduleOverride

_t = ScheduleOverride.__table__
_COLUMNS = (_t.c.id, _t.c.schedule, _t.c.person, _t.c.start_at, _t.c.end_at)


def overlapping(conn: Connection, since: dt.datetime, until: dt.datetime,
                schedules: Sequence[str] | None = None) -> list[Override]:
    """Every override that holds at some instant of [since, until), oldest made first: one indexed query."""
    where = [_t.c.end_at > since, _t.c.start_at < until]
    if schedules is not None:
        where.append(_t.c.schedule.in_(list(schedules)))
    rows = conn.execute(sa.select(*_COLUMNS).where(*where).order_by(_t.c.id))
    return [Override(r.id, r.schedule, r.person, r.start_at, r.end_at) for r in rows]
