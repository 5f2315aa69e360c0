"""Ids that must not be accepted again: revoked dashboard sessions, and platform requests already acted on
(PagerDuty events; Slack interactions, Telegram updates and Twilio messages, by prefixed ids).

Each is one primary-key lookup on the request path and one insert-or-ignore; retention (engine/retention.py)
deletes the rows that can no longer matter: a revocation once its cookie has expired, an event id after
PAGERDUTY_EVENTS_KEPT (events that occurred longer ago are not acted on: web/pagerduty_webhook.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .models import PagerdutyEvent, SessionRevocation
from .sql import insert_ignore

_revocations = SessionRevocation.__table__
_events = PagerdutyEvent.__table__

PAGERDUTY_EVENTS_KEPT = dt.timedelta(days=7)


def revoke_session(conn: Connection, session_id: str, *, now: dt.datetime, expires_at: dt.datetime) -> None:
    conn.execute(insert_ignore(conn, _revocations).values(session_id=session_id, revoked_at=now,
                                                          expires_at=expires_at))


def session_revoked(conn: Connection, session_id: str) -> bool:
    c = _revocations.c
    return conn.execute(sa.select(sa.literal(1)).where(c.session_id == session_id)).first() is not None


def remember_event(conn: Connection, event_id: str, *, now: dt.datetime) -> None:
    conn.execute(insert_ignore(conn, _events).values(event_id=event_id, received_at=now))


def event_seen(conn: Connection, event_id: str) -> bool:
    c = _events.c
    return conn.execute(sa.select(sa.literal(1)).where(c.event_id == event_id)).first() is not None


@dataclasses.dataclass
class Purged:
    session_revocations: int = 0
    pagerduty_events: int = 0


def purge(conn: Connection, now: dt.datetime) -> Purged:
    """Delete what can no longer be replayed: two range deletes on indexed columns."""
    return Purged(
        session_revocations=conn.execute(sa.delete(_revocations).where(_revocations.c.expires_at <= now)).rowcount,
        pagerduty_events=conn.execute(sa.delete(_events).where(
            _events.c.received_at < now - PAGERDUTY_EVENTS_KEPT)).rowcount)
