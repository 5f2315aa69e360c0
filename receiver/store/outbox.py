"""The outbox: notification intents and the messages that carry them to a channel, from their creation to
their delivery, and the delivery history the API lists.

Intents (items, unique per alert, channel, kind, level and repeat) are created exactly once, with INSERT … ON
CONFLICT DO NOTHING; a message is kept only when at least one of its items was actually inserted.

The dispatcher claims due messages under a lease (`claimed_by`, `claimed_until`), not a status: a process that
dies holding one simply lets it run out, and the message is claimed again — delivery is at least once. PostgreSQL
claims with `FOR UPDATE SKIP LOCKED`, so engines on one database never wait for or double-claim each other; SQLite
with the same conditional `UPDATE … RETURNING` under its single writer. Claims and outcomes are write jobs
(`ClaimDue`, `RecordOutcomes`) for the write port (write_port.py).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import functools
from collections import defaultdict
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain import NotificationStatus
from . import attempts, first_notified
from .models import Alert, Notification, NotificationItem
from .sql import bulk_insert, chunks, insert_returning_ids, update_from_rows

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
    target: str | None = None  # the person it pages through `channel`: "schedule:<name>", "person:<name>"; None: `to:`
    not_before: dt.datetime | None = None  # first due then, not at once (a chat channel's repeat digest window)


@dataclasses.dataclass(frozen=True, slots=True)
class Enqueued:
    message_ids: list[int]
    items: int
    message_keys: list[str] = dataclasses.field(default_factory=list)  # the message key of each of message_ids


def enqueue(conn: Connection, intents: Sequence[Intent], *, now: dt.datetime) -> Enqueued:
    """Create the messages and intents in a handful of statements, whatever the number of alerts."""
    if not intents:
        return Enqueued([], 0)
    grouped: dict[tuple[str, str, str, str, str | None], list[Intent]] = defaultdict(list)
    for intent in intents:
        # The target too: notices of one group may go to different people (paged before and after a handoff).
        grouped[(intent.message_key or intent.group_id, intent.channel, intent.kind, intent.level,
                 intent.target)].append(intent)
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
            "next_attempt_at": grouped[key][0].not_before or at,
            "target": target,
        }
        for key in keys
        for (_, channel, kind, level, target) in [key]
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
    return {alert_id: set(channels) for alert_id, channels in told_targets(conn, alert_ids).items()}


def told_targets(conn: Connection, alert_ids: Sequence[int]) -> dict[int, dict[str, str | None]]:
    """The channels that were told about each alert (any intent not given up on), each with where its notice
    goes: None for the channel's `to:`; for a channel that paged a person, that person ("person:<name>", the last
    one paged, however the schedule has handed off since), or the target itself while no attempt has resolved
    one yet. One query per 900 alerts."""
    told: dict[int, dict[str, str | None]] = defaultdict(dict)
    paged: set[tuple[int, str]] = set()  # (alert, channel) whose notice goes to a person recorded as paged
    for part in chunks(list(alert_ids), 900):
        # Grouped: an alert repeated for days has many messages per channel but few distinct addressees.
        last = sa.func.max(_messages.c.id).label("last")
        rows = conn.execute(
            sa.select(_items.c.alert_id, _items.c.channel, _messages.c.target, _messages.c.person, last)
            .join(_messages, _messages.c.id == _items.c.notification_id)
            .where(
                _items.c.alert_id.in_(part),
                _items.c.kind != "resolved",
                _messages.c.status != NotificationStatus.DEAD.value,
            )
            .group_by(_items.c.alert_id, _items.c.channel, _messages.c.target, _messages.c.person)
        )
        for row in sorted(rows, key=lambda r: r.last):
            key = (row.alert_id, row.channel)
            if row.target is not None and row.person is not None:
                told[row.alert_id][row.channel] = f"person:{row.person}"
                paged.add(key)
            elif key not in paged:
                told[row.alert_id][row.channel] = row.target
    return told


# --- delivery: claims, outcomes ------------------------------------------------------------------------------

_alerts = Alert.__table__
_OPEN_STATUSES = (NotificationStatus.PENDING.value, NotificationStatus.FAILED.value)


@dataclasses.dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    channel: str
    kind: str
    level: str
    group_key: str
    attempts: int
    created_at: dt.datetime
    give_up_at: dt.datetime | None
    target: str | None = None  # "schedule:<name>" | "person:<name>": resolved to a person at send (engine/paging.py)
    group_id: str = ""


def _due(now: dt.datetime, skip_channels: Sequence[str]) -> list[Any]:
    where = [_messages.c.status.in_(_OPEN_STATUSES), _messages.c.next_attempt_at <= now,
             sa.or_(_messages.c.claimed_until.is_(None), _messages.c.claimed_until <= now)]
    if skip_channels:
        where.append(_messages.c.channel.not_in(list(skip_channels)))
    return where


def has_due(conn: Connection, now: dt.datetime) -> bool:
    """A cheap poll (one index probe): is any message due?"""
    return conn.execute(sa.select(_messages.c.id).where(*_due(now, ())).limit(1)).first() is not None


def claim_due(conn: Connection, *, now: dt.datetime, worker: str, lease: dt.timedelta, limit: int,
              skip_channels: Sequence[str] = ()) -> list[Claimed]:
    """Lease up to `limit` due messages, oldest first, to `worker` until now + lease."""
    where = _due(now, skip_channels)
    pick = sa.select(_messages.c.id).where(*where).order_by(_messages.c.next_attempt_at).limit(limit)
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (sa.update(_messages).where(_messages.c.id.in_(pick.scalar_subquery()), *where)
            .values(claimed_by=worker[:200], claimed_until=now + lease)
            .returning(_messages.c.id, _messages.c.channel, _messages.c.kind, _messages.c.level,
                       _messages.c.group_key, _messages.c.attempts, _messages.c.created_at, _messages.c.give_up_at,
                       _messages.c.target, _messages.c.group_id))
    rows = [Claimed(*row) for row in conn.execute(stmt)]
    return sorted(rows, key=lambda c: c.id)


# What a message shows of each occurrence it carries (engine/delivery.py's MessageAlert, the dashboard's lists): not
# the whole row, whose every column would be decoded for every alert of every message sent.
_MESSAGE_COLUMNS = ("id", "fingerprint", "alertname", "status", "level", "severity", "service", "labels",
                    "annotations", "starts_at", "ends_at", "generator_url", "acked_by", "external_url")


# A message's occurrence as load_alerts gives it: a named tuple, whose fields read about ten times faster than a
# SQLAlchemy Row's (0.3 µs each): the dispatcher reads 14 of them for every alert of every message it sends.
CarriedAlert = collections.namedtuple("CarriedAlert", ("notification_id", *_MESSAGE_COLUMNS))


def load_alerts(conn: Connection, message_ids: Sequence[int]) -> dict[int, list[CarriedAlert]]:
    """The occurrences each message carries (the columns a message shows), in one join per chunk of messages."""
    carried: dict[int, list[CarriedAlert]] = defaultdict(list)
    if conn.dialect.name == "postgresql":
        for part in chunks(sorted(message_ids), 5000):
            for row in conn.execute(_load_alerts_postgresql(), {"ids": list(part)}):
                carried[row[0]].append(CarriedAlert._make(row))
        return carried
    for part in chunks(sorted(message_ids), 900):
        rows = conn.execute(
            sa.select(_items.c.notification_id, *(_alerts.c[name] for name in _MESSAGE_COLUMNS))
            .join(_alerts, _alerts.c.id == _items.c.alert_id)
            .where(_items.c.notification_id.in_(part))
            .order_by(_items.c.notification_id, _alerts.c.id)
        )
        for row in rows:
            carried[row[0]].append(CarriedAlert._make(row))
    return carried


@functools.lru_cache(maxsize=1)
def _load_alerts_postgresql() -> sa.TextClause:
    """One lookup of a message's items and one of each item's occurrence, by index, forced (LATERAL ... OFFSET 0).
    A join of `notification_items.notification_id IN (...)` with alerts was planned, on tables PostgreSQL had no
    statistics for yet (a new database), as scans of both: 17 ms a call for 128 one-alert messages in
    bench/ingest.py, the largest cost of PostgreSQL's CPU per webhook after the inserts."""
    columns = ", ".join(_MESSAGE_COLUMNS)
    return sa.text(
        f"SELECT i.notification_id, a.* FROM unnest(CAST(:ids AS bigint[])) AS m(id) "
        "CROSS JOIN LATERAL (SELECT notification_id, alert_id FROM notification_items "
        "WHERE notification_id = m.id OFFSET 0) AS i "
        f"CROSS JOIN LATERAL (SELECT {columns} FROM alerts WHERE alerts.id = i.alert_id OFFSET 0) AS a "
        "ORDER BY i.notification_id, a.id"
    ).columns(_items.c.notification_id, *(_alerts.c[name] for name in _MESSAGE_COLUMNS))


def alert_ids(conn: Connection, message_id: int) -> list[int]:
    return list(conn.scalars(sa.select(_items.c.alert_id).where(_items.c.notification_id == message_id)))


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    id: int
    status: str  # sent | failed | dead | pending (deferred by a rate limit: no attempt counted)
    attempted: bool
    at: dt.datetime
    next_attempt_at: dt.datetime | None = None
    error: str | None = None
    duration_ms: int | None = None
    person: str | None = None  # whom a message with a target paged, and why them: rotation | override | person
    person_source: str | None = None
    attempt: int | None = None  # this try's number (1 = first); None: read from the message (store/attempts.py)
    code: int | None = None  # the provider's HTTP status or SMTP reply code, when it answered one


def record(conn: Connection, outcomes: Sequence[Outcome], *, worker: str) -> set[int]:
    """Write the outcomes of a batch and release their leases, in one UPDATE from the outcomes' values per chunk;
    returns the ids written. A message whose lease was lost meanwhile (it ran out and another engine reclaimed it)
    is skipped: that engine records its own outcome. Each attempted outcome also adds its row to
    notification_attempts (store/attempts.py), in one multi-row INSERT."""
    sent = NotificationStatus.SENT.value
    rows = [{"id": o.id, "status": o.status, "next_attempt_at": o.next_attempt_at,
             "attempted": int(o.attempted), "at": o.at, "duration_ms": o.duration_ms, "sent": int(o.status == sent),
             "last_error": None if o.status == sent else (o.error[:2000] if o.error else None),
             "person": o.person, "person_source": o.person_source}
            for o in outcomes]
    t = _messages.name
    placeholder = "%s" if conn.dialect.name == "postgresql" else "?"
    kept = set(update_from_rows(
        conn, _messages, rows, returning="id",
        array_types={"attempted": "int[]", "sent": "int[]", "at": "timestamptz[]", "duration_ms": "int[]"},
        assignments=(
            f"status = v.status, next_attempt_at = v.next_attempt_at, claimed_by = NULL, claimed_until = NULL, "
            f"attempts = {t}.attempts + v.attempted, "
            f"last_attempt_at = CASE WHEN v.attempted = 1 THEN v.at ELSE {t}.last_attempt_at END, "
            f"last_duration_ms = CASE WHEN v.attempted = 1 THEN v.duration_ms ELSE {t}.last_duration_ms END, "
            f"sent_at = CASE WHEN v.sent = 1 THEN v.at ELSE {t}.sent_at END, "
            f"last_error = v.last_error, "
            # An attempt that found nobody keeps the person an earlier attempt paged (None: not a person's message).
            f"person = COALESCE(v.person, {t}.person), person_source = COALESCE(v.person_source, {t}.person_source)"),
        where=f"{t}.claimed_by = {placeholder}", where_params=[worker[:200]]))
    attempts.insert(conn, [o for o in outcomes if o.id in kept])
    return kept


def record_outcomes(conn: Connection, outcomes: Sequence[Outcome], *, worker: str,
                    notified: dict[int, list[int]]) -> set[int]:
    """record(), and the first notification of the occurrences that a message which was sent carried (`notified`:
    message id -> its alert ids, for sent first pages and escalations): one transaction for the dispatcher's batch.
    Returns the ids written."""
    kept = record(conn, outcomes, worker=worker)
    sent = [(o.at, alert_id) for o in outcomes if o.id in kept and o.status == NotificationStatus.SENT.value
            for alert_id in notified.get(o.id, ())]
    if sent:  # one statement for the batch: its sends finished within the same second or so
        first_notified.mark(conn, [alert_id for _, alert_id in sent], at=min(at for at, _ in sent))
    return kept


@dataclasses.dataclass(frozen=True, slots=True)
class ClaimDue:
    """Write job (store/write_port.py): claim_due. Returns the Claimed messages, sorted by id."""

    now: dt.datetime
    worker: str
    lease: dt.timedelta
    limit: int
    skip_channels: tuple[str, ...] = ()

    def run(self, conn: Connection) -> list[Claimed]:
        return claim_due(conn, now=self.now, worker=self.worker, lease=self.lease, limit=self.limit,
                         skip_channels=self.skip_channels)


@dataclasses.dataclass(frozen=True, slots=True)
class RecordOutcomes:
    """Write job (store/write_port.py): record_outcomes. Returns the ids written."""

    outcomes: tuple[Outcome, ...]
    worker: str
    notified: dict[int, list[int]] = dataclasses.field(default_factory=dict)

    def run(self, conn: Connection) -> set[int]:
        return record_outcomes(conn, self.outcomes, worker=self.worker, notified=self.notified)


# --- the history the API lists -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NotificationFilter:
    status: str | None = None
    channel: str | None = None
    kind: str | None = None
    alert_id: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    before_id: int | None = None  # keyset pagination: newest first
    limit: int = 100


def list_notifications(conn: Connection, f: NotificationFilter) -> list[dict[str, Any]]:
    q = sa.select(_messages)
    if f.status:
        q = q.where(_messages.c.status == f.status)
    if f.channel:
        q = q.where(_messages.c.channel == f.channel)
    if f.kind:
        q = q.where(_messages.c.kind == f.kind)
    if f.since:
        q = q.where(_messages.c.created_at >= f.since)
    if f.until:
        q = q.where(_messages.c.created_at < f.until)
    if f.alert_id is not None:
        q = q.where(_messages.c.id.in_(sa.select(_items.c.notification_id).where(_items.c.alert_id == f.alert_id)))
    if f.before_id is not None:
        q = q.where(_messages.c.id < f.before_id)
    rows = list(conn.execute(q.order_by(_messages.c.id.desc()).limit(f.limit)))
    counts = _alert_counts(conn, [r.id for r in rows])
    return [{**row._asdict(), "alert_ids": counts.get(row.id, [])} for row in rows]


def _alert_counts(conn: Connection, ids: Sequence[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = defaultdict(list)
    for part in chunks(list(ids), 900):
        for row in conn.execute(sa.select(_items.c.notification_id, _items.c.alert_id)
                                .where(_items.c.notification_id.in_(part)).order_by(_items.c.alert_id)):
            found[row.notification_id].append(row.alert_id)
    return found


def get_notification(conn: Connection, message_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(_messages).where(_messages.c.id == message_id)).first()
    if row is None:
        return None
    return {**row._asdict(), "alert_ids": alert_ids(conn, message_id)}


def requeue(conn: Connection, message_id: int, *, now: dt.datetime, give_up_after: dt.timedelta) -> bool:
    """Send a failed or dead message again now, with a fresh retry deadline; False if it is not failed or dead."""
    stmt = (sa.update(_messages)
            .where(_messages.c.id == message_id,
                   _messages.c.status.in_([NotificationStatus.DEAD.value, NotificationStatus.FAILED.value]))
            .values(status=NotificationStatus.PENDING.value, next_attempt_at=now, give_up_at=now + give_up_after,
                    claimed_by=None, claimed_until=None))
    return conn.execute(stmt).rowcount == 1


def backlog(conn: Connection, now: dt.datetime) -> tuple[int, float]:
    """Messages waiting to be delivered, and the age in seconds of the oldest (for /metrics)."""
    row = conn.execute(sa.select(sa.func.count(), sa.func.min(_messages.c.created_at))
                       .where(_messages.c.status.in_(_OPEN_STATUSES))).one()
    oldest = row[1]
    return row[0], (now - oldest).total_seconds() if oldest is not None else 0.0
