"""Maintenance windows in the database (oncall_models.MaintenanceWindow): made, listed and ended early through the
API, read by the engine (engine/mutes.py) to mute the alerts they match. Made by hand, so there are few: reading
every window that holds at an instant is one probe of the end_at index."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .models import Alert, NotificationItem
from .oncall_models import MaintenanceWindow
from .sql import chunks, sqlite_datetime

_t = MaintenanceWindow.__table__
_alerts = Alert.__table__
_items = NotificationItem.__table__
_COLUMNS = (_t.c.id, _t.c.matchers, _t.c.start_at, _t.c.end_at, _t.c.comment, _t.c.created_at, _t.c.created_by,
            _t.c.ended_early_by)


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    id: int
    matchers: tuple[str, ...]  # matcher strings, e.g. 'service="db"'; the alert must match all of them
    start: dt.datetime
    end: dt.datetime
    comment: str = ""
    created_at: dt.datetime | None = None
    created_by: str | None = None
    ended_early_by: str | None = None

    def as_dict(self, now: dt.datetime) -> dict[str, Any]:
        """A window as the API answers it; `state` is active, upcoming or ended at `now`."""
        state = "ended" if now >= self.end or self.end <= self.start else "upcoming" if now < self.start else "active"
        return {"id": self.id, "matchers": list(self.matchers), "start": iso(self.start), "end": iso(self.end),
                "comment": self.comment, "state": state, "created_at": iso(self.created_at),
                "created_by": self.created_by, "ended_early_by": self.ended_early_by}


class WindowError(ValueError):
    """A window that cannot be: `status` 404 (no such window) or 409 (already ended)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _window(row: Any) -> Window:
    return Window(row.id, tuple(row.matchers or ()), row.start_at, row.end_at, row.comment or "", row.created_at,
                  row.created_by, row.ended_early_by)


def create(conn: Connection, *, matchers: Sequence[str], start: dt.datetime, end: dt.datetime, comment: str,
           now: dt.datetime, actor: str | None) -> Window:
    """Store a window in the caller's write transaction. The caller checks end > start and the matchers."""
    new_id = conn.execute(sa.insert(_t).values(matchers=list(matchers), start_at=start, end_at=end, comment=comment,
                                               created_at=now, created_by=actor).returning(_t.c.id)).scalar_one()
    return Window(new_id, tuple(matchers), start, end, comment, now, actor, None)


def active_at(conn: Connection, at: dt.datetime) -> list[Window]:
    """Every window holding at `at` (start <= at < end), oldest made first: one range probe of the end_at index."""
    rows = conn.execute(sa.select(*_COLUMNS).where(_t.c.end_at > at, _t.c.start_at <= at).order_by(_t.c.id))
    return [_window(r) for r in rows]


_HOLDING = ("SELECT id, matchers, start_at, end_at FROM maintenance_windows WHERE end_at > {p} AND start_at <= {p} "
            "ORDER BY id")


def holding_between(conn: Connection, since: dt.datetime, until: dt.datetime) -> list[Window]:
    """Every window that holds at some instant of [since, until], oldest made first (id, matchers, start, end only).

    The webhook's write asks this once per batch that opens alerts: straight to the driver, as fetch_state, since
    SQLAlchemy's compilation cost a hundred times the query (176 µs against 1.3 µs on SQLite)."""
    cursor = conn.connection.driver_connection.cursor()
    try:
        if conn.dialect.name == "sqlite":
            cursor.execute(_HOLDING.format(p="?"), (sqlite_datetime(since), sqlite_datetime(until)))
        else:
            cursor.execute(_HOLDING.format(p="%s"), (since, until))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    out = []
    for window_id, matchers, start, end in rows:
        if isinstance(matchers, str):
            matchers = json.loads(matchers)
        out.append(Window(window_id, tuple(matchers or ()), _instant(start), _instant(end)))
    return out


def _instant(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, str):  # SQLite: naive UTC text
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.timezone.utc)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def listing(conn: Connection, *, now: dt.datetime, since: dt.datetime | None = None,
            limit: int = 1000) -> list[Window]:
    """Windows active at `now` or upcoming, and, with `since`, those that ended after it; by start, at most the
    `limit` that start last."""
    rows = conn.execute(sa.select(*_COLUMNS).where(_t.c.end_at > (now if since is None else min(since, now)))
                        .order_by(_t.c.start_at.desc(), _t.c.id.desc()).limit(limit))
    return [_window(r) for r in reversed(rows.fetchall())]


def get(conn: Connection, window_id: int) -> Window | None:
    row = conn.execute(sa.select(*_COLUMNS).where(_t.c.id == window_id)).first()
    return None if row is None else _window(row)


def end_early(conn: Connection, window_id: int, *, now: dt.datetime, actor: str | None) -> Window:
    """End a window now (an upcoming one ends before it starts: it never mutes). The alerts muted are looked at
    again at the engine's next tick (release_muted): whatever still mutes them (another window, a time interval)
    keeps them muted, the rest are told."""
    window = get(conn, window_id)
    if window is None:
        raise WindowError(404, f"no maintenance window with id {window_id}")
    if window.end <= now:
        raise WindowError(409, f"maintenance window {window_id} already ended at {iso(window.end)}")
    changed = conn.execute(sa.update(_t).where(_t.c.id == window_id, _t.c.end_at > now)
                           .values(end_at=now, ended_early_by=actor)).rowcount
    if not changed:  # ended by someone else meanwhile
        raise WindowError(409, f"maintenance window {window_id} already ended")
    release_muted(conn, now=now)
    return dataclasses.replace(window, end=now, ended_early_by=actor)


def release_muted(conn: Connection, *, now: dt.datetime) -> int:
    """Every firing alert still muted is due at once, to be looked at again: one UPDATE. All of them, not only
    those muted until the window's old end: a mute that went on past it (a time interval after the window) may
    not cover the time between now and that end."""
    return conn.execute(sa.update(_alerts).where(
        sa.text("alerts.status = 'firing'"), _alerts.c.muted_until > now, _alerts.c.next_action_at > now)
        .values(next_action_at=now, updated_at=now)).rowcount


def purge_ended(conn: Connection, before: dt.datetime) -> int:
    """Retention: delete every window that ended before `before` (one statement); how many went."""
    return conn.execute(sa.delete(_t).where(_t.c.end_at < before)).rowcount


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def told_at_level(conn: Connection, alert_ids: Sequence[int], level: str) -> set[int]:
    """Which of these alerts were ever paged at `level` (firing, escalated or repeat): an alert muted from its
    first page is told "firing" when its mute ends, the others "repeat"."""
    told: set[int] = set()
    for part in chunks(sorted(set(alert_ids)), 900):
        told.update(conn.scalars(sa.select(_items.c.alert_id).distinct().where(
            _items.c.alert_id.in_(part), _items.c.level == level, _items.c.kind.in_(("firing", "escalated", "repeat")))))
    return told
