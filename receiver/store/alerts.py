"""Set-based writes of alert occurrences and their events; every function takes an open transaction."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any, Iterable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain import OpenOccurrence, StoredState
from .models import Alert, AlertEvent, INDEXED_TEXT
from .sql import bulk_insert, chunks

_alerts = Alert.__table__
_events = AlertEvent.__table__
_IN_CHUNK = 900
_ANY_CHUNK = 5000  # fingerprints per array parameter (no parameter limit applies)
_STATE_POSTGRESQL = (
    "SELECT f.fp, a.id, a.starts_at, a.annotations, a.generator_url FROM unnest(%(fps)s::text[]) AS f(fp) "
    "CROSS JOIN LATERAL (SELECT id, starts_at, annotations, generator_url FROM alerts "
    "WHERE fingerprint = f.fp AND status = 'firing' OFFSET 0) AS a "
    "UNION ALL SELECT f.fp, NULL, c.ends_at, NULL, NULL FROM unnest(%(fps)s::text[]) AS f(fp) "
    "CROSS JOIN LATERAL (SELECT ends_at FROM alerts WHERE fingerprint = f.fp AND status = 'resolved' "
    "AND ends_at IS NOT NULL ORDER BY ends_at DESC LIMIT 1) AS c")


def fetch_state(conn: Connection, fingerprints: Sequence[str]) -> dict[str, StoredState]:
    """Open occurrence and end of the last closed one, per fingerprint: one statement of two indexed lookups."""
    if conn.dialect.name == "sqlite":
        return _fetch_state_sqlite(conn, fingerprints)
    return _fetch_state_postgresql(conn, fingerprints)


def _fetch_state_postgresql(conn: Connection, fingerprints: Sequence[str]) -> dict[str, StoredState]:
    """Both lookups in one statement and one round trip: for each fingerprint of one array parameter, its open
    occurrence through the unique partial index, and the end of its last closed one through (fingerprint, ends_at).

    Written so that the plan holds on a table PostgreSQL has no statistics for yet: a new database under its first
    storm (autovacuum analyses a table a minute at the earliest). Without statistics `status = 'firing'` looks as
    selective as a fingerprint, so `fingerprint = ANY(...) AND status = 'firing'` was planned as a scan of
    ix_alerts_status_level, i.e. of every firing alert, for every webhook (20 ms a call at 50,000 open alerts in
    bench/ingest.py, half of PostgreSQL's CPU). One lookup per fingerprint (LATERAL, OFFSET 0 so that it is not
    flattened into a join) lets the planner see the unique index return one row. Planned on every call (never
    server-side prepared, as everything here: db.py): a generic plan made on a tiny table would keep the worse
    index."""
    opened: dict[str, OpenOccurrence] = {}
    closed: dict[str, dt.datetime] = {}
    cursor = conn.connection.driver_connection.cursor()
    try:
        for part in chunks(list(fingerprints), _ANY_CHUNK):
            cursor.execute(_STATE_POSTGRESQL, {"fps": part})
            for fp, occurrence_id, when, annotations, generator_url in cursor.fetchall():
                if when is None:
                    continue
                moment = when.astimezone(dt.timezone.utc)
                if occurrence_id is None:
                    closed[fp] = moment
                else:
                    opened[fp] = OpenOccurrence(occurrence_id, moment, annotations or {}, generator_url)
    finally:
        cursor.close()
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
