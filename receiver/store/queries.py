"""Reading history: filtered, keyset-paginated lists of occurrences and one occurrence with its timeline."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..matchers import Matcher
from . import attempts
from .first_notified import first_notified_at
from .models import Alert, AlertEvent, Notification, NotificationItem

_alerts = Alert.__table__
_events = AlertEvent.__table__
_messages = Notification.__table__
_items = NotificationItem.__table__


@dataclasses.dataclass(frozen=True)
class AlertFilter:
    status: str | None = None
    levels: Sequence[str] = ()
    severities: Sequence[str] = ()
    services: Sequence[str] = ()
    alertnames: Sequence[str] = ()
    fingerprint: str | None = None
    since: dt.datetime | None = None  # on starts_at
    until: dt.datetime | None = None
    acked: bool | None = None
    matchers: Sequence[Matcher] = ()
    group_id: str | None = None


def _label(name: str):
    # JSON text extraction works on both dialects; a missing label compares as "" as in Alertmanager.
    return sa.func.coalesce(_alerts.c.labels[name].as_string(), "")


def _matcher_clause(m: Matcher):
    value = _label(m.name)
    if m.op == "=":
        return value == m.value
    if m.op == "!=":
        return value != m.value
    pattern = f"^(?:{m.value})$"
    if m.op == "=~":
        return value.regexp_match(pattern)
    return sa.not_(value.regexp_match(pattern))


def where_clauses(f: AlertFilter) -> list:
    c = _alerts.c
    clauses = []
    if f.status:
        clauses.append(c.status == f.status)
    if f.levels:
        clauses.append(c.level.in_(list(f.levels)))
    if f.severities:
        clauses.append(c.severity.in_(list(f.severities)))
    if f.services:
        clauses.append(c.service.in_(list(f.services)))
    if f.alertnames:
        clauses.append(c.alertname.in_(list(f.alertnames)))
    if f.fingerprint:
        clauses.append(c.fingerprint == f.fingerprint)
    if f.group_id:
        clauses.append(c.group_id == f.group_id)
    if f.since is not None:
        clauses.append(c.starts_at >= f.since)
    if f.until is not None:
        clauses.append(c.starts_at < f.until)
    if f.acked is True:
        clauses.append(c.acked_at.is_not(None))
    elif f.acked is False:
        clauses.append(c.acked_at.is_(None))
    clauses.extend(_matcher_clause(m) for m in f.matchers)
    return clauses


# An occurrence as the API answers it: its row, with its first notification's time where the column used to be.
_ALERT_COLUMNS = tuple(first_notified_at().label("first_notified_at") if c.name == "first_notified_at" else c
                       for c in _alerts.c)
_INTERNAL = frozenset({"sla_flags"})  # bookkeeping for SLA statistics, not a fact of the alert to answer with


def alert_to_dict(row: Any) -> dict[str, Any]:
    m = row._mapping
    out = {k: m[k] for k in m.keys() if k not in _INTERNAL}
    for key, value in out.items():
        if isinstance(value, dt.datetime):
            out[key] = iso(value)
    out["acked"] = m["acked_at"] is not None
    return out


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def list_alerts(conn: Connection, f: AlertFilter, *, limit: int, after_id: int | None = None,
                order: str = "desc") -> tuple[list[dict[str, Any]], int | None]:
    """A page of occurrences ordered by id (arrival order), and the cursor of the next page (None at the end)."""
    query = sa.select(*_ALERT_COLUMNS).where(*where_clauses(f))
    if order == "asc":
        if after_id is not None:
            query = query.where(_alerts.c.id > after_id)
        query = query.order_by(_alerts.c.id.asc())
    else:
        if after_id is not None:
            query = query.where(_alerts.c.id < after_id)
        query = query.order_by(_alerts.c.id.desc())
    rows = conn.execute(query.limit(limit + 1)).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return [alert_to_dict(r) for r in rows], (rows[-1].id if more else None)


def get_alert(conn: Connection, alert_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(*_ALERT_COLUMNS).where(_alerts.c.id == alert_id)).first()
    if row is None:
        return None
    alert = alert_to_dict(row)
    events = conn.execute(
        sa.select(_events).where(_events.c.alert_id == alert_id).order_by(_events.c.at, _events.c.id)
    )
    # Events and messages are numbered apart: an entry's id says which, so it is unique within the timeline.
    timeline = [
        {
            "id": f"event:{e.id}",
            "at": iso(e.at),
            "kind": e.kind,
            "actor": e.actor,
            "comment": e.comment,
            "from_level": e.from_level,
            "to_level": e.to_level,
            "details": e.details,
        }
        for e in events
    ]
    timeline.extend(_deliveries(conn, alert_id))
    timeline.sort(key=lambda entry: entry["at"] or "")  # ISO-8601 UTC strings sort as times
    alert["timeline"] = timeline
    return alert


def _deliveries(conn: Connection, alert_id: int) -> list[dict[str, Any]]:
    """The messages that carried this occurrence, as `notified` timeline entries with their delivery status and
    every attempt: read from the outbox (one indexed join, and one query for the attempts of all of them), not
    written as one event per alert and message."""
    m = _messages.c
    rows = conn.execute(
        sa.select(m.id, m.channel, m.kind, m.level, m.status, m.attempts, m.created_at, m.sent_at, m.last_attempt_at,
                  m.last_error, m.target, m.person, m.person_source)
        .join(_items, _items.c.notification_id == m.id).where(_items.c.alert_id == alert_id).order_by(m.id)).all()
    tries = attempts.for_messages(conn, [r.id for r in rows])
    return [{
        "id": f"notification:{r.id}",
        "at": iso(r.sent_at or r.last_attempt_at or r.created_at),
        "kind": "notified",
        "actor": "engine",
        "comment": None,
        "from_level": None,
        "to_level": r.level or None,
        "details": {"notification_id": r.id, "channel": r.channel, "kind": r.kind, "status": r.status,
                    "attempts": r.attempts, **({"error": r.last_error} if r.last_error else {}),
                    "attempt_log": tries.get(r.id, []),  # each try, oldest first (store/attempts.py)
                    # A message to a schedule or person: whom it paged, and why them (rotation, override, person).
                    **({"target": r.target, "person": r.person, "person_source": r.person_source}
                       if r.target else {})},
    } for r in rows]


def count_alerts(conn: Connection, f: AlertFilter | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(_alerts)
    if f is not None:
        query = query.where(*where_clauses(f))
    return conn.execute(query).scalar_one()
