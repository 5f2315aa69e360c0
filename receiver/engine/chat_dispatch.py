"""What the dispatcher does for chat channels (issue #18), kept out of delivery.py's retry loop:

- threads: a threading channel (the Slack app, Telegram) gets its group's open thread with each message (an edit of
  the root gets the latest thread, open or just closed); the roots its sends post are stored, and every reply
  sent in a thread asks for an edit of the root (store/chat_threads.py, in the outcomes' transaction);
- digests: the repeats claimed together for one chat channel (they fall due at the same window boundary: tick.py
  `digest_due`) go out as one message when they are from at least `repeat_digest.min_groups` groups.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Callable, Mapping, Sequence

from ..channels.base import Channel
from ..domain import ChatThread, Message, NotificationKind, NotificationStatus, Posted
from ..store import chat_threads
from ..store import outbox as store
from ..store.db import read_transaction

Lane = list[store.Claimed]
LaneKey = tuple[str, str]  # (channel, group_key)


@dataclasses.dataclass
class Threads:
    """The threads of a claimed batch, by (channel, group_id): open ones, and the latest whatever its state."""

    open: dict[tuple[str, str], ChatThread] = dataclasses.field(default_factory=dict)
    latest: dict[tuple[str, str], ChatThread] = dataclasses.field(default_factory=dict)


def load_threads(db, channels: Mapping[str, Channel], claimed: Sequence[store.Claimed]) -> Threads:
    keys = [(c.channel, c.group_id) for c in claimed if _threads(channels, c.channel) and c.group_id]
    if not keys:
        return Threads()
    with read_transaction(db) as conn:
        return Threads(*chat_threads.threads_of(conn, keys))


def _threads(channels: Mapping[str, Channel], channel: str) -> bool:
    found = channels.get(channel)
    return found is not None and found.threads


class LaneThread:
    """One lane's view of its group's thread: a root posted by an earlier message of the lane is used by the next."""

    def __init__(self, threads: Threads, channels: Mapping[str, Channel], item: store.Claimed):
        self.key = (item.channel, item.group_id)
        self.enabled = _threads(channels, item.channel)
        self.open = threads.open.get(self.key)
        self.latest = threads.latest.get(self.key)

    def for_message(self, item: store.Claimed) -> ChatThread | None:
        if not self.enabled:
            return None
        return self.latest if item.kind == NotificationKind.UPDATE.value else self.open

    def posted(self, posted: Posted) -> None:
        self.open = self.latest = ChatThread(posted.conversation, posted.root_id)


def split_digests(lanes: dict[LaneKey, Lane], channels: Mapping[str, Channel]) -> list[Lane]:
    """Take out of `lanes` the repeats to be sent as digests: per chat channel with a repeat digest, the repeats
    of at least `min_groups` groups in this batch. Repeats that page a person (a target) stay single: a digest
    mentions no one. Returns one list of messages per digest."""
    by_channel: dict[str, Lane] = {}
    for (channel, _), lane in lanes.items():
        found = channels.get(channel)
        if found is None or found.repeat_digest is None:
            continue
        by_channel.setdefault(channel, []).extend(
            item for item in lane if item.kind == NotificationKind.REPEAT.value and item.target is None)
    digests = []
    for channel, items in by_channel.items():
        if len({item.group_key for item in items}) < channels[channel].repeat_digest.min_groups:
            continue
        digests.append(sorted(items, key=lambda item: item.id))
        taken = {item.id for item in items}
        for key in [k for k in lanes if k[0] == channel]:
            lanes[key] = [item for item in lanes[key] if item.id not in taken]
            if not lanes[key]:
                del lanes[key]
    return digests


def digest_message(items: Lane, carried: Mapping[int, list[Any]],
                   build: Callable[[store.Claimed, list[Any]], Message]) -> Message:
    """One message carrying every alert of the digested repeats (each once, in order), at the highest level."""
    rows: dict[int, Any] = {}
    for item in items:
        for row in carried.get(item.id, []):
            rows.setdefault(row.id, row)
    base = build(items[0], list(rows.values()))
    levels = [a.level for a in base.alerts] or [base.level]
    return dataclasses.replace(base, group_key="", group_id="", level=min(levels),  # "L1" < "L2": the highest
                               digest_groups=len({item.group_key for item in items}),
                               created_at=min(item.created_at for item in items))


def chat_job(job: Any, done: Sequence[tuple[store.Claimed, store.Outcome, Message, Posted | None]],
             channels: Mapping[str, Channel]) -> Any:
    """The outcomes' write job, wrapped to store the roots posted and ask for root edits when the batch has any."""
    sent = NotificationStatus.SENT.value
    roots: list[chat_threads.PostedRoot] = []
    replies: list[chat_threads.ThreadReply] = []
    for item, outcome, message, posted in done:
        if outcome.status != sent or not _threads(channels, item.channel) or message.digest_groups:
            continue
        if posted is not None and item.group_id:
            roots.append(chat_threads.PostedRoot(item.channel, item.group_id,
                                                 ChatThread(posted.conversation, posted.root_id), outcome.at))
        replies.append(chat_threads.ThreadReply(item.id, item.channel, item.group_id, item.kind, outcome.at,
                                                edits_root=message.thread is not None and posted is None))
    if not roots and not replies:
        return job
    return chat_threads.RecordChatOutcomes(job, tuple(roots), tuple(replies))


def no_thread(item: store.Claimed, at: dt.datetime) -> store.Outcome:
    """An edit whose group never had a thread in this channel (its root was never posted): nothing to edit."""
    return store.Outcome(item.id, NotificationStatus.DEAD.value, False, at,
                         error="no thread of this group in the channel to edit (its first message was never posted)")
