"""The outbox: notification intents (items, unique per alert, channel, kind, level and repeat) and the messages
that carry them to a channel. Intents are created exactly once, with INSERT … ON CONFLICT DO NOTHING; a message is
kept only when at least one of its items was actually inserted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain import NotificationStatus
from .models import Notification, NotificationItem
from .sql import bulk_insert, chunks, insert_returning_ids

_messages = Notification.__table__
_items = NotificationItem.__table__


@dataclasses.dataclass(frozen=True, slots=True)
class Intent:
    """Tell `channel` about alert `alert_id` (kind, level, repeat). Intents with equal `message_key`, channel,
    kind and level share one message: the alerts of one Alertmanager group that reached a level together."""

    alert_id: int
    channel: str
    kind: str
    level: str
    group_id: str
    group_key: str
    repeat_no: int = 0
    message_key: str = ""  # defaults to group_id; per-alert for channels that never group (PagerDuty)
    at: dt.datetime | None = None  # when the intent arose, if not the `now` of enqueue (several snapshots at once)


@dataclasses.dataclass(frozen=True, slots=True)
class Enqueued:
    message_ids: list[int]
    items: int
    message_keys: list[str] = dataclasses.field(default_factory=list)  # the message key of each of message_ids


def enqueue(conn: Connection, intents: Sequence[Intent], *, now: dt.datetime) -> Enqueued:
    """Create the messages and intents in a handful of statements, whatever the number of alerts."""
    if not intents:
        return Enqueued([], 0)
    grouped: dict[tuple[str, str, str, str], list[Intent]] = defaultdict(list)
    for intent in intents:
        grouped[(intent.message_key or intent.group_id, intent.channel, intent.kind, intent.level)].append(intent)
    keys = list(grouped)
    message_rows = [
        {
            "channel": channel,
            "kind": kind,
            "level": level,
            "group_key": grouped[key][0].group_key,
            "group_id": grouped[key][0].group_id,
            "status": NotificationStatus.PENDING.value,
            "attempts": 0,
            "created_at": at,
            "next_attempt_at": at,
        }
        for key in keys
        for (_, channel, kind, level) in [key]
        for at in [grouped[key][0].at or now]
    ]
    message_ids = insert_returning_ids(conn, _messages, message_rows)

    item_rows = [
        {
            "notification_id": message_id,
            "alert_id": i.alert_id,
            "channel": i.channel,
            "kind": i.kind,
            "level": i.level,
            "repeat_no": i.repeat_no,
        }
        for key, message_id in zip(keys, message_ids)
        for i in grouped[key]
    ]
    used: set[int] = set()
    inserted = 0
    for row in bulk_insert(conn, _items, item_rows, ignore_conflicts=True, returning=("notification_id",)):
        used.add(row.notification_id)
        inserted += 1
    empty = [m for m in message_ids if m not in used]
    for part in chunks(empty, 900):
        # Every intent of these messages already existed (a retry, a duplicate, a second engine): no message.
        conn.execute(sa.delete(_messages).where(_messages.c.id.in_(part)))
    kept = [(m, key[0]) for key, m in zip(keys, message_ids) if m in used]
    return Enqueued([m for m, _ in kept], inserted, [k for _, k in kept])


def told_channels(conn: Connection, alert_ids: Sequence[int]) -> dict[int, set[str]]:
    """The channels that were told about each alert (any intent not given up on), for resolution notices."""
    told: dict[int, set[str]] = defaultdict(set)
    for part in chunks(list(alert_ids), 900):
        rows = conn.execute(
            sa.select(_items.c.alert_id, _items.c.channel)
            .join(_messages, _messages.c.id == _items.c.notification_id)
            .where(
                _items.c.alert_id.in_(part),
                _items.c.kind != "resolved",
                _messages.c.status != NotificationStatus.DEAD.value,
            )
            .distinct()
        )
        for row in rows:
            told[row.alert_id].add(row.channel)
    return told
