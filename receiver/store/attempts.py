"""Delivery attempts: one row per try to send an outbox message (table notification_attempts, issue #19).

Written by the dispatcher's outcome transaction (outbox.record): every attempted outcome of the batch in one
multi-row INSERT — sent, failed (to be retried) or dead. Outcomes that were not attempts (a rate-limit deferral, a
message dead before any send: its channel gone, nobody to page, no thread to edit) add no row. Read set-based, for
one message (the API) or for every message of an occurrence (its timeline), in one query per 900 messages.

Rows go with their message: the foreign key cascades (SQLite runs with foreign_keys=ON, store/db.py), so
retention's deletion of finished messages (store/expiry.py) takes their attempts in the same statement.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .attempt_models import NotificationAttempt
from .models import Notification
from .sql import bulk_insert, chunks

ERROR_LIMIT = 2000  # characters of a (redacted) reason kept, as notifications.last_error

_attempts = NotificationAttempt.__table__
_messages = Notification.__table__
OUTCOMES = ("sent", "failed", "dead")


def insert(conn: Connection, outcomes: Sequence[Any]) -> int:
    """Add one row per attempted outcome (store.outbox.Outcome). An outcome without its attempt number takes the
    message's count of attempts, read after record() counted this one (one query per 900 messages)."""
    tried = [o for o in outcomes if o.attempted and o.status in OUTCOMES]
    if not tried:
        return 0
    missing = [o.id for o in tried if o.attempt is None]
    counted: dict[int, int] = {}
    for part in chunks(sorted(set(missing)), 900):
        counted.update((r.id, r.attempts) for r in conn.execute(
            sa.select(_messages.c.id, _messages.c.attempts).where(_messages.c.id.in_(part))))
    rows = [{"notification_id": o.id, "attempt": o.attempt if o.attempt is not None else counted.get(o.id, 1),
             "at": o.at, "duration_ms": o.duration_ms, "code": o.code, "outcome": o.status,
             "error": None if o.status == "sent" or not o.error else o.error[:ERROR_LIMIT]}
            for o in tried]
    bulk_insert(conn, _attempts, rows)
    return len(rows)


def _iso(value: dt.datetime) -> str:  # as queries.iso (which imports this module: no cycle)
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _json(row: Any) -> dict[str, Any]:
    return {"attempt": row.attempt, "at": _iso(row.at), "duration_ms": row.duration_ms, "code": row.code,
            "outcome": row.outcome, "error": row.error}


def for_messages(conn: Connection, message_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Each message's attempts, oldest first, as the API shows them."""
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    a = _attempts.c
    for part in chunks(sorted(set(message_ids)), 900):
        rows = conn.execute(sa.select(a.notification_id, a.attempt, a.at, a.duration_ms, a.code, a.outcome, a.error)
                            .where(a.notification_id.in_(part)).order_by(a.notification_id, a.at, a.id))
        for row in rows:
            found[row.notification_id].append(_json(row))
    return found


def for_message(conn: Connection, message_id: int) -> list[dict[str, Any]] | None:
    """The attempts of one message, oldest first; None when there is no such message."""
    if conn.execute(sa.select(_messages.c.id).where(_messages.c.id == message_id)).first() is None:
        return None
    return for_messages(conn, [message_id]).get(message_id, [])
