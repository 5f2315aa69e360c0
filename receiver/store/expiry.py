"""Retention in SQL: which occurrences may go, claimed and deleted in batches in the caller's (short) write
transaction. engine/retention.py drives the batches and folds each into the daily rollups before deleting it
(statistics/write_rollups.py), in the same transaction.

An occurrence may go when it is resolved and lies wholly before the cutoff (`starts_at` and its end, Alertmanager's
`endsAt` else the receiver's resolution time), and no message about it is still being delivered. Firing
occurrences never go. With it go its events, notification items and correlations, then the messages left without
items. Children are deleted explicitly (not only by ON DELETE CASCADE) so that the counts can be reported.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain import NotificationStatus
from .models import Alert, AlertEvent, Correlation, Notification, NotificationItem
from .sql import chunks

_alerts = Alert.__table__
_events = AlertEvent.__table__
_items = NotificationItem.__table__
_messages = Notification.__table__
_correlations = Correlation.__table__

# Messages in these states are finished: deleting them (or their items) cannot disturb a delivery.
FINISHED = (NotificationStatus.SENT.value, NotificationStatus.DEAD.value)


@dataclasses.dataclass
class BatchCounts:
    alerts: int = 0
    events: int = 0
    notification_items: int = 0
    notifications: int = 0
    correlations: int = 0
    rollup_rows: int = 0

    def add(self, other: "BatchCounts") -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


def eligible(cutoff: dt.datetime) -> list:
    """Resolved, started and ended before the cutoff, and no message about it still on its way."""
    c = _alerts.c
    busy = (sa.select(sa.literal(1)).select_from(_items.join(_messages, _messages.c.id == _items.c.notification_id))
            .where(_items.c.alert_id == c.id, _messages.c.status.not_in(FINISHED)))
    return [
        c.starts_at < cutoff,  # the index range (ix_alerts_starts_at)
        c.status == "resolved",
        sa.func.coalesce(c.ends_at, c.resolved_at, c.starts_at) < cutoff,
        ~sa.exists(busy),
    ]


def count_eligible(conn: Connection, cutoff: dt.datetime) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(_alerts).where(*eligible(cutoff))).scalar_one()


def claim(conn: Connection, cutoff: dt.datetime, limit: int) -> list[int]:
    """Up to `limit` eligible ids, oldest first. On PostgreSQL the rows stay locked until commit and rows another
    engine holds are skipped; on SQLite the caller's write transaction already excludes every other writer."""
    c = _alerts.c
    query = sa.select(c.id).where(*eligible(cutoff)).order_by(c.starts_at, c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=_alerts)
    return list(conn.execute(query).scalars())


def delete(conn: Connection, ids: list[int]) -> BatchCounts:
    """Delete these occurrences with their events, items and correlations, then their messages left empty."""
    out = BatchCounts()
    message_ids: set[int] = set()
    for part in chunks(ids, 10000):
        message_ids.update(conn.execute(sa.select(_items.c.notification_id).where(_items.c.alert_id.in_(part))
                                        .distinct()).scalars())
        out.events += conn.execute(sa.delete(_events).where(_events.c.alert_id.in_(part))).rowcount
        out.notification_items += conn.execute(sa.delete(_items).where(_items.c.alert_id.in_(part))).rowcount
        out.correlations += conn.execute(sa.delete(_correlations).where(
            sa.or_(_correlations.c.alert_id.in_(part), _correlations.c.related_alert_id.in_(part)))).rowcount
        out.alerts += conn.execute(sa.delete(_alerts).where(_alerts.c.id.in_(part))).rowcount
    for part in chunks(sorted(message_ids), 10000):
        out.notifications += conn.execute(sa.delete(_messages).where(
            _messages.c.id.in_(part), _messages.c.status.in_(FINISHED), ~_has_items())).rowcount
    return out


def _has_items():
    return sa.exists(sa.select(sa.literal(1)).where(_items.c.notification_id == _messages.c.id))


def sweep_messages(conn: Connection, cutoff: dt.datetime, limit: int) -> int:
    """Finished messages older than the cutoff that no item refers to any more (left behind when two engines
    deleted the last items of one message at the same time, each still seeing the other's)."""
    m = _messages.c
    ids = list(conn.execute(sa.select(m.id).where(m.created_at < cutoff, m.status.in_(FINISHED), ~_has_items())
                            .order_by(m.id).limit(limit)).scalars())
    if not ids:
        return 0
    return conn.execute(sa.delete(_messages).where(m.id.in_(ids), ~_has_items())).rowcount
