"""The rows of Alertmanager silences made for acks (models.AlertmanagerSilence): intents, claims and outcomes.

Every function takes an open transaction. Whether a silence is still wanted is decided in SQL, from the occurrence
itself: it is wanted while the occurrence fires and carries the very ack the silence was made for. So any way an ack
ends — unack, expiry, a resolution by Alertmanager, by hand or by the reconciler, a later re-ack — retires it,
without each of those paths having to remember silences.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .models import INDEXED_TEXT, Alert, AlertmanagerSilence
from .sql import bulk_insert

_silences = AlertmanagerSilence.__table__
_alerts = Alert.__table__

PENDING, ACTIVE, EXPIRING, EXPIRED, CANCELLED = "pending", "active", "expiring", "expired", "cancelled"


@dataclasses.dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    alert_id: int
    alertmanager: str
    silence_id: str | None
    ends_at: dt.datetime
    attempts: int
    labels: dict[str, str]


def record(conn: Connection, acks: Sequence[tuple[int, dt.datetime]], alertmanagers: Sequence[str], *,
           acked_at: dt.datetime, now: dt.datetime) -> None:
    """One pending silence per (acked occurrence, Alertmanager); `acks` holds (alert id, silence end)."""
    rows = [{"alert_id": alert_id, "alertmanager": url[:INDEXED_TEXT], "acked_at": acked_at, "ends_at": ends_at,
             "state": PENDING, "silence_id": None, "attempts": 0, "next_attempt_at": now, "last_error": None,
             "created_at": now, "updated_at": now}
            for alert_id, ends_at in acks for url in alertmanagers]
    bulk_insert(conn, _silences, rows, ignore_conflicts=True)


def _still_wanted():
    return sa.exists().where(_alerts.c.id == _silences.c.alert_id, sa.text("alerts.status = 'firing'"),
                             _alerts.c.acked_at == _silences.c.acked_at)


def retire_unwanted(conn: Connection, *, now: dt.datetime) -> tuple[int, int]:
    """Silences whose ack has ended: not yet created → cancelled; created → expiring (due now). Two UPDATEs."""
    cancelled = conn.execute(sa.update(_silences).where(_silences.c.state == PENDING, ~_still_wanted())
                             .values(state=CANCELLED, next_attempt_at=None, updated_at=now)).rowcount
    expiring = conn.execute(sa.update(_silences).where(_silences.c.state == ACTIVE, ~_still_wanted())
                            .values(state=EXPIRING, next_attempt_at=now, updated_at=now)).rowcount
    return cancelled, expiring


def claim_due(conn: Connection, state: str, *, now: dt.datetime, lease: dt.timedelta, limit: int) -> list[Claimed]:
    """Take up to `limit` due rows in `state` for `lease` (a second engine skips them), with their alert's labels."""
    due = [_silences.c.state == state, _silences.c.next_attempt_at <= now]
    pick = sa.select(_silences.c.id).where(*due).order_by(_silences.c.next_attempt_at).limit(limit)
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    taken = conn.execute(sa.update(_silences).where(_silences.c.id.in_(pick.scalar_subquery()), *due)
                         .values(next_attempt_at=now + lease, updated_at=now)
                         .returning(_silences.c.id, _silences.c.alert_id, _silences.c.alertmanager,
                                    _silences.c.silence_id, _silences.c.ends_at, _silences.c.attempts)).all()
    if not taken:
        return []
    labels = dict(conn.execute(sa.select(_alerts.c.id, _alerts.c.labels)
                               .where(_alerts.c.id.in_(sorted({r.alert_id for r in taken})))).all())
    return [Claimed(r.id, r.alert_id, r.alertmanager, r.silence_id, r.ends_at, r.attempts, labels.get(r.alert_id) or {})
            for r in sorted(taken, key=lambda r: r.id)]


def mark_created(conn: Connection, row_id: int, silence_id: str, *, now: dt.datetime) -> None:
    """The silence exists. If its ack ended meanwhile (cancelled), it is expired next, now that its id is known."""
    pending = _silences.c.state == PENDING
    conn.execute(sa.update(_silences).where(_silences.c.id == row_id, _silences.c.silence_id.is_(None)).values(
        silence_id=silence_id[:64], last_error=None, updated_at=now,
        state=sa.case((pending, ACTIVE), else_=EXPIRING),
        next_attempt_at=sa.case((pending, sa.null()), else_=sa.literal(now, _silences.c.next_attempt_at.type))))


def mark_expired(conn: Connection, row_id: int, *, now: dt.datetime) -> None:
    conn.execute(sa.update(_silences).where(_silences.c.id == row_id, _silences.c.state == EXPIRING)
                 .values(state=EXPIRED, next_attempt_at=None, last_error=None, updated_at=now))


def mark_retry(conn: Connection, row_id: int, *, now: dt.datetime, delay: dt.timedelta, error: str) -> None:
    conn.execute(sa.update(_silences).where(_silences.c.id == row_id).values(
        attempts=_silences.c.attempts + 1, next_attempt_at=now + delay, last_error=error[:1000], updated_at=now))


def ours(conn: Connection) -> set[str]:
    """Ids of the silences the receiver holds in Alertmanager (the reconciler tells them from people's)."""
    return set(conn.scalars(sa.select(_silences.c.silence_id).where(
        _silences.c.state.in_([ACTIVE, EXPIRING]), _silences.c.silence_id.is_not(None))))


def of_alert(conn: Connection, alert_id: int) -> list[Any]:
    return list(conn.execute(sa.select(_silences).where(_silences.c.alert_id == alert_id).order_by(_silences.c.id)))
