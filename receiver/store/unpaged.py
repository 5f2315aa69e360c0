"""Messages that were to page a person but reached nobody (nobody on shift, or no address for the channel): never
a silent drop. With the batch's outcomes, in one write job (`RecordPagedOutcomes`): each such message is dead
(not attempted), each of its alerts gets a `nobody_on_call` event naming the schedule and the fallback, and the
schedule's `fallback:` channels are told instead (same kind, level and repeat; as plain channels).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain import EventKind
from . import outbox
from .alerts import NewEvent, insert_events
from .models import Notification, NotificationItem
from .sql import chunks

_messages = Notification.__table__
_items = NotificationItem.__table__


@dataclasses.dataclass(frozen=True, slots=True)
class Unpaged:
    """Message `id` reached nobody at `at`: the event's details (target, schedule or person, channel, reason,
    fallback) and the channels told instead, each with whether it takes one message per alert (PagerDuty)."""

    id: int
    at: dt.datetime
    details: dict[str, Any]
    fallback: tuple[tuple[str, bool], ...] = ()


def fall_back(conn: Connection, unpaged: Sequence[Unpaged], kept: set[int]) -> int:
    """Events and fallback intents for the unpaged messages whose outcome was written (`kept`), in a few
    statements for the batch. One event per alert and target: the via channels of one target that all found
    nobody make one entry naming them all. Returns the fallback messages created."""
    wanted = {u.id: u for u in unpaged if u.id in kept}
    if not wanted:
        return 0
    events: dict[tuple[int, str], NewEvent] = {}
    intents: list[outbox.Intent] = []
    for part in chunks(sorted(wanted), 900):
        rows = conn.execute(
            sa.select(_items.c.notification_id, _items.c.alert_id, _items.c.kind, _items.c.level, _items.c.repeat_no,
                      _messages.c.group_id, _messages.c.group_key)
            .join(_messages, _messages.c.id == _items.c.notification_id)
            .where(_items.c.notification_id.in_(part))
            .order_by(_items.c.notification_id, _items.c.alert_id))
        for row in rows:
            u = wanted[row.notification_id]
            key = (row.alert_id, str(u.details.get("target")))
            if key in events:
                channels = events[key].details["channels"]
                if u.details["channel"] not in channels:
                    channels.append(u.details["channel"])
            else:
                details = {**{k: v for k, v in u.details.items() if k != "channel"}, "channels": [u.details["channel"]]}
                events[key] = NewEvent(row.alert_id, EventKind.NOBODY_ON_CALL.value, u.at, actor="engine",
                                       to_level=row.level or None, details=details)
            for channel, per_alert in u.fallback:
                intents.append(outbox.Intent(row.alert_id, channel, row.kind, row.level, row.group_id, row.group_key,
                                             repeat_no=row.repeat_no,
                                             message_key=f"alert:{row.alert_id}" if per_alert else "", at=u.at))
    insert_events(conn, events.values())
    return len(outbox.enqueue(conn, intents, now=min(u.at for u in wanted.values())).message_ids)


@dataclasses.dataclass(frozen=True, slots=True)
class RecordPagedOutcomes:
    """Write job (store/write_port.py): outbox.RecordOutcomes, then fall_back for the messages that reached nobody.
    Returns the ids written."""

    record: outbox.RecordOutcomes
    unpaged: tuple[Unpaged, ...]

    def run(self, conn: Connection) -> set[int]:
        kept = self.record.run(conn)
        fall_back(conn, self.unpaged, kept)
        return kept
