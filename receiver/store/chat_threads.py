"""Chat threads: where each notification group's conversation lives in a threading chat channel (the Slack app,
Telegram), shared by every process through the database, so that a restart or another replica keeps threading.

With the dispatcher's outcomes, in one write job (`RecordChatOutcomes`): the roots that sends posted are stored;
a resolution sent while none of its group's alerts fire closes the thread (the next page starts a new one); and
every reply sent in a thread enqueues an `update` message, which the channel sends as an edit of the root
(through the outbox, with its retries, like any message).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain import AlertStatus, ChatThread, NotificationKind
from . import outbox
from .models import Alert, ChatThreadRow
from .sql import chunks

_threads = ChatThreadRow.__table__
_alerts = Alert.__table__


def threads_of(conn: Connection, keys: Sequence[tuple[str, str]]) -> tuple[dict[tuple[str, str], ChatThread],
                                                                           dict[tuple[str, str], ChatThread]]:
    """For each (channel, group_id): its open thread, and its latest thread open or closed (an edit after the
    resolution closed the thread still edits that root). One query per 400 keys."""
    open_: dict[tuple[str, str], ChatThread] = {}
    latest: dict[tuple[str, str], ChatThread] = {}
    c = _threads.c
    for part in chunks(sorted(set(keys)), 400):
        channels, groups = sorted({ch for ch, _ in part}), sorted({g for _, g in part})
        # (channel, group_id) is the index: both in the condition, so a long history of threads is never scanned.
        rows = conn.execute(sa.select(c.channel, c.group_id, c.conversation, c.root_id, c.closed_at)
                            .where(c.channel.in_(channels), c.group_id.in_(groups)).order_by(c.id))
        wanted = set(part)
        for row in rows:  # oldest first: the latest thread of a key wins
            key = (row.channel, row.group_id)
            if key not in wanted:
                continue
            thread = ChatThread(row.conversation, row.root_id)
            latest[key] = thread
            if row.closed_at is None:
                open_[key] = thread
            else:
                open_.pop(key, None)
    return open_, latest


@dataclasses.dataclass(frozen=True, slots=True)
class PostedRoot:
    channel: str
    group_id: str
    thread: ChatThread
    at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ThreadReply:
    """A message (`id`) a threading channel sent for a group: a resolution may close the thread; a reply in the
    thread (`edits_root`) asks for an edit of the root."""

    id: int
    channel: str
    group_id: str
    kind: str
    at: dt.datetime
    edits_root: bool = True


def store_roots(conn: Connection, roots: Sequence[PostedRoot]) -> None:
    if roots:
        conn.execute(sa.insert(_threads), [
            {"channel": r.channel, "group_id": r.group_id, "conversation": r.thread.conversation[:200],
             "root_id": r.thread.root_id[:200], "created_at": r.at, "closed_at": None} for r in roots])


def close_resolved(conn: Connection, replies: Sequence[ThreadReply]) -> int:
    """Close the threads whose group's resolution was sent and that have no firing alert left."""
    resolved = {(r.channel, r.group_id): r.at for r in replies if r.kind == NotificationKind.RESOLVED.value}
    if not resolved:
        return 0
    groups = sorted({g for _, g in resolved})
    firing: set[str] = set()
    for part in chunks(groups, 900):
        firing.update(conn.scalars(sa.select(_alerts.c.group_id).distinct()
                                   .where(_alerts.c.group_id.in_(part),
                                          _alerts.c.status == AlertStatus.FIRING.value)))
    closing = sorted(key for key in resolved if key[1] not in firing)
    if not closing:
        return 0
    c = _threads.c
    at = max(resolved[key] for key in closing)  # one batch's sends: within a second or so of each other
    closed = 0
    for part in chunks(closing, 400):  # one UPDATE per 400 threads, whatever the batch
        closed += conn.execute(sa.update(_threads).where(sa.tuple_(c.channel, c.group_id).in_(part),
                                                         c.closed_at.is_(None)).values(closed_at=at)).rowcount
    return closed


def root_updates(conn: Connection, replies: Sequence[ThreadReply]) -> int:
    """After replies sent in threads: one `update` message per channel and group (carrying the alerts of its
    replies in the batch), unless one is already waiting unclaimed: the edit renders the state at send time, so a
    waiting edit covers later replies too. A few statements for the batch."""
    wanted = [r for r in replies if r.edits_root and r.kind != NotificationKind.UPDATE.value]
    if not wanted:
        return 0
    m, i = outbox._messages.c, outbox._items.c
    waiting: set[tuple[str, str]] = set()
    for part in chunks(sorted({r.group_id for r in wanted}), 900):
        waiting.update((row.channel, row.group_id) for row in conn.execute(
            sa.select(m.channel, m.group_id).where(m.kind == NotificationKind.UPDATE.value, m.group_id.in_(part),
                                                   m.status.in_(outbox._OPEN_STATUSES), m.claimed_by.is_(None))))
    newest: dict[tuple[str, str], ThreadReply] = {}
    for reply in wanted:
        key = (reply.channel, reply.group_id)
        if key not in waiting and (key not in newest or reply.id > newest[key].id):
            newest[key] = reply
    by_id = {r.id: r for r in wanted if (r.channel, r.group_id) in newest}
    intents: dict[tuple[str, str, int], outbox.Intent] = {}
    for part in chunks(sorted(by_id), 900):
        for row in conn.execute(sa.select(i.notification_id, i.alert_id, m.group_key)
                                .join(outbox._messages, m.id == i.notification_id)
                                .where(i.notification_id.in_(part))):
            reply = by_id[row.notification_id]
            last = newest[(reply.channel, reply.group_id)]
            # repeat_no = the newest reply's id: an intent unique per edit (notification_items' unique key); level
            # "": the edit shows the alerts' levels as they are when it is sent.
            intents[(reply.channel, reply.group_id, row.alert_id)] = outbox.Intent(
                row.alert_id, reply.channel, NotificationKind.UPDATE.value, "", reply.group_id, row.group_key,
                repeat_no=last.id, message_key=f"update:{reply.group_id}", at=last.at)
    return len(outbox.enqueue(conn, list(intents.values()), now=min(r.at for r in wanted)).message_ids)


@dataclasses.dataclass(frozen=True, slots=True)
class RecordChatOutcomes:
    """Write job (store/write_port.py): the outcomes (`record`: outbox.RecordOutcomes or unpaged's
    RecordPagedOutcomes), then the roots posted, the threads closed and the root edits, for the messages whose
    outcome was written. Returns the ids written."""

    record: Any
    roots: tuple[PostedRoot, ...]
    replies: tuple[ThreadReply, ...]

    def run(self, conn: Connection) -> set[int]:
        kept = self.record.run(conn)
        store_roots(conn, self.roots)
        replies = [r for r in self.replies if r.id in kept]
        close_resolved(conn, replies)
        root_updates(conn, replies)
        return kept


def purge(conn: Connection, before: dt.datetime) -> int:
    """Retention: threads closed before `before` (their groups' alerts are long resolved)."""
    return conn.execute(sa.delete(_threads).where(_threads.c.closed_at < before)).rowcount
