"""Manual correlations: POST /api/v1/correlations records a link between two occurrences (table `correlations`),
which read_correlations.py lists in both directions beside the computed ones."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..store.models import Alert, Correlation
from ..store.queries import iso
from ..store.sql import insert_ignore

_alerts = Alert.__table__
_links = Correlation.__table__


class CorrelationError(Exception):
    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


@dataclasses.dataclass(frozen=True)
class NewLink:
    alert_id: int
    related_alert_id: int
    type: str = "manual"
    score: float = 1.0
    comment: str | None = None
    actor: str | None = None


def link(conn: Connection, new: NewLink, *, now: dt.datetime) -> dict[str, Any]:
    """Record a manual correlation in the caller's write transaction. A link is undirected for duplicates:
    A→B and B→A of one type are the same link (409)."""
    if new.alert_id == new.related_alert_id:
        raise CorrelationError(400, "bad_field", "an alert cannot be correlated with itself")
    c = _alerts.c
    pair = sorted((new.alert_id, new.related_alert_id))
    query = sa.select(c.id).where(c.id.in_(pair)).order_by(c.id)
    if conn.dialect.name == "postgresql":
        # Serialise links of one pair (the unique constraint covers one direction only); SQLite's writer lock
        # already does.
        query = query.with_for_update(key_share=True)  # FOR NO KEY UPDATE
    present = set(conn.execute(query).scalars())
    missing = [i for i in (new.alert_id, new.related_alert_id) if i not in present]
    if missing:
        raise CorrelationError(404, "not_found", f"no alert with id {missing[0]}")
    l = _links.c
    duplicate = conn.execute(sa.select(l.id).where(l.type == new.type, sa.or_(
        sa.and_(l.alert_id == new.alert_id, l.related_alert_id == new.related_alert_id),
        sa.and_(l.alert_id == new.related_alert_id, l.related_alert_id == new.alert_id)))).first()
    if duplicate is not None:
        raise CorrelationError(409, "duplicate", f"alerts {pair[0]} and {pair[1]} are already linked as "
                                                 f"{new.type!r} (correlation {duplicate.id})")
    row = {"alert_id": new.alert_id, "related_alert_id": new.related_alert_id, "type": new.type,
           "score": float(new.score), "actor": new.actor, "comment": new.comment, "created_at": now}
    try:
        inserted = conn.execute(insert_ignore(conn, _links).values(**row).returning(l.id)).first()
    except IntegrityError:  # an alert deleted meanwhile (retention)
        raise CorrelationError(404, "not_found", "the alert no longer exists") from None
    if inserted is None:
        raise CorrelationError(409, "duplicate", f"alerts {pair[0]} and {pair[1]} are already linked as {new.type!r}")
    return {"id": inserted.id, **{k: v for k, v in row.items() if k != "created_at"}, "created_at": iso(now)}
