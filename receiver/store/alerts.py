"""Set-based writes of alert occurrences and their events; every function takes an open transaction."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any, Iterable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from ..domain import OpenOccurrence, StoredState
from .models import Alert, AlertEvent, INDEXED_TEXT
from .sql import bulk_insert, chunks

_alerts = Alert.__table__
_events = AlertEvent.__table__
_IN_CHUNK = 900
# Literal, not bound: SQLite only uses the partial index uq_alerts_open_fingerprint when the query's WHERE
# visibly implies the index's own `status = 'firing'`.
_OPEN = sa.text("alerts.status = 'firing'")
_CLOSED = sa.text("alerts.status = 'resolved'")


def fetch_state(conn: Connection, fingerprints: Sequence[str]) -> dict[str, StoredState]:
    """Open occurrence and end of the last closed one, per fingerprint: two indexed queries per 900 fingerprints."""
    if conn.dialect.name == "sqlite":
        return _fetch_state_sqlite(conn, fingerprints)
    opened: dict[str, OpenOccurrence] = {}
    closed: dict[str, dt.datetime] = {}
    for part in chunks(list(fingerprints), _IN_CHUNK):
        # One array parameter (= ANY), not an IN list of 900: on an un-analysed table PostgreSQL planned the list
        # as a bitmap scan of every firing alert (65 ms at 25,000 rows; 0.4 ms this way).
        any_fp = _alerts.c.fingerprint == sa.any_(sa.bindparam("fps", list(part), type_=postgresql.ARRAY(sa.String)))
        rows = conn.execute(
            sa.select(_alerts.c.id, _alerts.c.fingerprint, _alerts.c.starts_at, _alerts.c.annotations, _alerts.c.generator_url)
            .where(any_fp, _OPEN)
        )
        for row in rows:
            opened[row.fingerprint] = OpenOccurrence(row.id, row.starts_at, row.annotations or {}, row.generator_url)
        rows = conn.execute(
            sa.select(_alerts.c.fingerprint, sa.func.max(_alerts.c.ends_at).label("last_end"))
            .where(any_fp, _CLOSED)
            .group_by(_alerts.c.fingerprint)
        )
        for row in rows:
            if row.last_end is not None:
                closed[row.fingerprint] = row.last_end
    return {fp: StoredState(opened.get(fp), closed.get(fp)) for fp in set(opened) | set(closed)}


def _fetch_state_sqlite(conn: Connection, fingerprints: Sequence[str]) -> dict[str, StoredState]:
    """The same two lookups in one statement, straight to the driver: on the 1-alert webhook path, SQLAlchemy's
    compilation of an expanding IN cost more than the query."""
    opened: dict[str, OpenOccurrence] = {}
    closed: dict[str, dt.datetime] = {}
    cursor = conn.connection.driver_connection.cursor()
    try:
        for part in chunks(list(fingerprints), _IN_CHUNK // 2):
            marks = ", ".join("?" * len(part))
            cursor.execute(
                # INDEXED BY: without statistics (a new database) SQLite picked ix_alerts_status_level and
                # scanned every firing alert: 10.5 ms at 20,000 open alerts against 0.03 ms by fingerprint.
                f"SELECT fingerprint, id, starts_at, annotations, generator_url FROM alerts "
                f"INDEXED BY uq_alerts_open_fingerprint WHERE status = 'firing' AND fingerprint IN ({marks}) "
                f"UNION ALL SELECT fingerprint, NULL, max(ends_at), NULL, NULL FROM alerts "
                f"INDEXED BY ix_alerts_fingerprint_ends_at "
                f"WHERE status = 'resolved' AND fingerprint IN ({marks}) GROUP BY fingerprint",
                [*part, *part])
            for fp, occurrence_id, when, annotations_json, generator_url in cursor.fetchall():
                if when is None:
                    continue
                moment = dt.datetime.fromisoformat(when).replace(tzinfo=dt.timezone.utc)
                if occurrence_id is None:
                    closed[fp] = moment
                else:
                    opened[fp] = OpenOccurrence(occurrence_id, moment, json.loads(annotations_json or "{}"), generator_url)
    finally:
        cursor.close()
    return {fp: StoredState(opened.get(fp), closed.get(fp)) for fp in set(opened) | set(closed)}


def clip(value: str | None) -> str:
    """Indexed copies of label values are cut short (PostgreSQL btree entries cap at about 2.7 kB)."""
    return (value or "")[:INDEXED_TEXT]


def insert_occurrences(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """INSERT … ON CONFLICT DO NOTHING; returns fingerprint → id for the rows actually inserted.

    A row that conflicts (an HA peer inserted the same occurrence first) is simply absent from the result.
    """
    inserted: dict[str, int] = {}
    if not rows:
        return inserted
    for row in bulk_insert(conn, _alerts, rows, ignore_conflicts=True, returning=("id", "fingerprint")):
        inserted[row.fingerprint] = row.id
    return inserted


def close_occurrences(conn: Connection, ends: Mapping[int, dt.datetime], *, now: dt.datetime, by: str) -> list[int]:
    """Resolve open occurrences with their end times in one UPDATE per chunk; returns the ids this call closed."""
    closed: list[int] = []
    ids = sorted(ends)
    for part in chunks(ids, _IN_CHUNK // 2):
        stmt = (
            sa.update(_alerts)
            .where(_alerts.c.id.in_(part), _alerts.c.status == "firing")
            .values(
                status="resolved",
                ends_at=sa.case({i: sa.literal(ends[i], _alerts.c.ends_at.type) for i in part}, value=_alerts.c.id),
                resolved_at=now,
                resolved_by=by,
                next_action_at=None,
                updated_at=now,
            )
            .returning(_alerts.c.id)
        )
        closed.extend(row.id for row in conn.execute(stmt))
    return closed


def update_open(conn: Connection, updates: Sequence[Mapping[str, Any]], *, now: dt.datetime) -> None:
    """Refresh annotations (and an earlier startsAt) of open occurrences: one executemany."""
    if not updates:
        return
    stmt = (
        sa.update(_alerts)
        .where(_alerts.c.id == sa.bindparam("b_id"), _alerts.c.status == "firing")
        .values(
            starts_at=sa.func.coalesce(sa.bindparam("b_starts_at", type_=_alerts.c.starts_at.type), _alerts.c.starts_at),
            annotations=sa.bindparam("b_annotations", type_=_alerts.c.annotations.type),
            generator_url=sa.bindparam("b_generator_url"),
            updated_at=now,
        )
    )
    conn.execute(stmt, [dict(u) for u in updates])


@dataclasses.dataclass(frozen=True, slots=True)
class NewEvent:
    alert_id: int
    kind: str
    at: dt.datetime
    actor: str | None = None
    comment: str | None = None
    from_level: str | None = None
    to_level: str | None = None
    details: dict[str, Any] | str | None = None  # a str is JSON already encoded


def insert_events(conn: Connection, events: Iterable[NewEvent]) -> None:
    # Plain dicts, not dataclasses.asdict: asdict deep-copies every details dict (measured: a third of ingest).
    rows = [{"alert_id": e.alert_id, "kind": e.kind, "at": e.at, "actor": e.actor, "comment": e.comment,
             "from_level": e.from_level, "to_level": e.to_level, "details": e.details} for e in events]
    bulk_insert(conn, _events, rows)
