"""The escalation timers as SQL: find what is due, and move occurrences with conditional, set-based UPDATEs.

Every change is `UPDATE … WHERE <still in the state we decided on> RETURNING`: the rows returned are the ones this
transaction changed, and only they get events and notification intents. A second engine running the same tick
either skips the rows the first one holds (PostgreSQL: `FOR UPDATE SKIP LOCKED` in the claim) or finds them no
longer due; SQLite has a single writer, and the same conditional UPDATE.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .models import Alert
from .sql import chunks

_alerts = Alert.__table__
_FIRING = sa.text("alerts.status = 'firing'")

# What the engine needs of a changed occurrence to notify about it.
_RETURNED = (_alerts.c.id, _alerts.c.fingerprint, _alerts.c.labels, _alerts.c.group_id, _alerts.c.group_key,
             _alerts.c.level, _alerts.c.repeat_count, _alerts.c.route)


@dataclasses.dataclass(frozen=True, slots=True)
class DueGroup:
    route: str
    level: str
    acked: bool
    count: int
    muted: bool = False  # muted_until is set: a mute (engine/mutes.py) ran to its end, not a level's timer


def still_due(group: DueGroup, now: dt.datetime) -> list[Any]:
    """The conditions of an occurrence still due in `group` (for conditional updates)."""
    return [_alerts.c.next_action_at <= now, _FIRING, _alerts.c.route == group.route, _alerts.c.level == group.level,
            _alerts.c.acked_at.is_not(None) if group.acked else _alerts.c.acked_at.is_(None),
            _alerts.c.muted_until.is_not(None) if group.muted else _alerts.c.muted_until.is_(None)]


def due_groups(conn: Connection, now: dt.datetime) -> list[DueGroup]:
    """(route, level, acked) of every occurrence whose timer has passed: a range scan of the partial index on
    next_action_at, so the cost follows the number due, not the number open."""
    acked = (_alerts.c.acked_at.is_not(None)).label("acked")
    muted = (_alerts.c.muted_until.is_not(None)).label("muted")
    rows = conn.execute(
        sa.select(_alerts.c.route, _alerts.c.level, acked, muted, sa.func.count().label("n"))
        .where(_alerts.c.next_action_at <= now, _FIRING)
        .group_by(_alerts.c.route, _alerts.c.level, acked, muted)
    )
    return [DueGroup(r.route, r.level, bool(r.acked), r.n, bool(r.muted)) for r in rows]


def advance_due(conn: Connection, group: DueGroup, *, now: dt.datetime, values: dict[str, Any],
                limit: int) -> list[Any]:
    """Apply `values` to at most `limit` due occurrences of `group`, conditionally; returns the changed rows."""
    still = still_due(group, now)
    claim = sa.select(_alerts.c.id).where(*still).order_by(_alerts.c.next_action_at).limit(limit)
    if conn.dialect.name == "postgresql":
        claim = claim.with_for_update(skip_locked=True)
    stmt = sa.update(_alerts).where(_alerts.c.id.in_(claim.scalar_subquery()), *still).values(**values)
    return list(conn.execute(stmt.returning(*_RETURNED)))


def due_rows(conn: Connection, group: DueGroup, *, now: dt.datetime, after_id: int, limit: int) -> list[Any]:
    """id and labels of at most `limit` due occurrences of `group` with ids above `after_id`, by id (engine/mutes.py
    pages through a group this way when maintenance windows decide alert by alert)."""
    return list(conn.execute(sa.select(_alerts.c.id, _alerts.c.labels)
                             .where(*still_due(group, now), _alerts.c.id > after_id).order_by(_alerts.c.id).limit(limit)))


def update_open(conn: Connection, ids: Sequence[int], *, where: Sequence[Any] = (), values: dict[str, Any]) -> list[Any]:
    """A lifecycle change to open occurrences by id (ack, unack, resolve, escalate), conditional on `where`."""
    changed = []
    for part in chunks(sorted(ids), 900):  # sorted: two engines or HA peers lock rows in the same order
        stmt = (sa.update(_alerts).where(_alerts.c.id.in_(part), _FIRING, *where).values(**values)
                .returning(*_RETURNED))
        changed.extend(conn.execute(stmt))
    return changed


def open_ids_of_group(conn: Connection, *, group_id: str) -> list[int]:
    return list(conn.scalars(sa.select(_alerts.c.id).where(_alerts.c.group_id == group_id, _FIRING)))


def open_routes(conn: Connection) -> list[Any]:
    """id, route and labels of every open occurrence: a reload re-matches them against the new routes."""
    return list(conn.execute(sa.select(_alerts.c.id, _alerts.c.route, _alerts.c.escalate, _alerts.c.labels)
                             .where(_FIRING)))


def set_route(conn: Connection, ids: Sequence[int], *, route: str, escalate: bool, now: dt.datetime) -> None:
    for part in chunks(sorted(ids), 900):
        values: dict[str, Any] = {"route": route, "escalate": escalate, "updated_at": now}
        if not escalate:
            values["next_action_at"] = None
        conn.execute(sa.update(_alerts).where(_alerts.c.id.in_(part), _FIRING).values(**values))


def retime_open(conn: Connection, *, route: str, level: str, delay: dt.timedelta | None, now: dt.datetime) -> int:
    """After a reload: the pending timer of every unacknowledged open occurrence on `route` at `level` becomes
    level_entered_at + delay (or none) — one statement per route and level."""
    started = sa.func.coalesce(_alerts.c.timer_started_at, _alerts.c.level_entered_at)
    next_at = sa.null() if delay is None else _shifted(conn, started, delay)
    stmt = (sa.update(_alerts)
            .where(_alerts.c.route == route, _alerts.c.level == level, _FIRING, _alerts.c.acked_at.is_(None),
                   _alerts.c.escalate, _alerts.c.muted_until.is_(None))  # a muted one waits for its mute's end
            .values(next_action_at=next_at, updated_at=now))
    return conn.execute(stmt).rowcount


def _shifted(conn: Connection, column, delay: dt.timedelta):
    """column + delay, in SQL, keeping the stored format of each dialect."""
    seconds = delay.total_seconds()
    if conn.dialect.name == "postgresql":
        return column + sa.literal(delay)
    # SQLite stores UTCDateTime as 'YYYY-MM-DD HH:MM:SS.ffffff' text; strftime keeps that shape.
    return sa.func.strftime("%Y-%m-%d %H:%M:%f000", column, f"{seconds:+.6f} seconds")


shifted = _shifted  # engine/sla_breaches.py stamps breach times (level_entered_at + target) with it
