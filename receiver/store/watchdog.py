"""The dead-man's switch's two facts, rows of receiver_state: when a webhook last carried the firing Watchdog, and
when the switch was armed without one (deadman.enabled: true). The time lives in `updated_at`, a real timestamp."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from .models import ReceiverState
from .sql import insert_ignore

_state = ReceiverState.__table__
LAST_SEEN = "deadman.watchdog_last_seen"
ARMED = "deadman.armed_at"


def record_seen(conn: Connection, now: dt.datetime, *, alertname: str) -> None:
    """Move the last-seen time forward to `now` (never back: webhooks of several workers commit out of order)."""
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(_state)
    stmt = insert.values(key=LAST_SEEN, value=alertname[:200], updated_at=now).on_conflict_do_update(
        index_elements=[_state.c.key],
        set_={"value": insert.excluded.value, "updated_at": insert.excluded.updated_at},
        where=_state.c.updated_at < insert.excluded.updated_at)
    conn.execute(stmt)


def last_seen(conn: Connection) -> dt.datetime | None:
    return conn.scalar(sa.select(_state.c.updated_at).where(_state.c.key == LAST_SEEN))


def armed_at(conn: Connection, now: dt.datetime) -> dt.datetime:
    """When the switch was first armed with no Watchdog seen yet; set to `now` by the first caller."""
    conn.execute(insert_ignore(conn, _state).values(key=ARMED, value="", updated_at=now))
    return conn.scalar(sa.select(_state.c.updated_at).where(_state.c.key == ARMED))
