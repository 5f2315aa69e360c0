"""One engine pass, `tick(writes, config, now)`: every due occurrence escalates, repeats at L1, or resumes after its
ack expired — set-based, idempotent, safe to run in several engines at once — and each change becomes
notification intents in the same transaction.

Cost follows what is due: one grouped range scan of the next_action_at index, then one conditional UPDATE per
(route, level) group and batch, one INSERT of events, a few of outbox rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import Counter
from typing import Any, Iterable

from sqlalchemy.engine import Connection

from ..channels.chat import digest_window_end
from ..config import Config
from ..config.routes import ResolvedRoute
from ..config.sla_targets import VISITED, flag as sla_flag
from ..domain import EventKind, Level, NotificationKind
from ..store import outbox
from ..store import timers
from ..store.alerts import NewEvent, insert_events
from ..store.db import read_transaction
from ..store.write_port import Writes
from . import mutes
from .escalation import Action, Step, due_step
from .plan import message_key, paged_at
from .routing import match_routes

log = logging.getLogger("receiver.engine")

BATCH = 2000  # occurrences per transaction: keeps SQLite's write lock short when a backlog is due at once


@dataclasses.dataclass
class TickResult:
    escalations: Counter = dataclasses.field(default_factory=Counter)  # (from, to) -> count
    repeats: int = 0
    resumed: int = 0
    messages: int = 0
    muted: int = 0  # muted now (engine/mutes.py): their clock waits
    unmuted: int = 0  # their mute ended: told at their level again

    @property
    def changed(self) -> int:
        return sum(self.escalations.values()) + self.repeats + self.resumed


def routes_by_name(config: Config) -> tuple[dict[str, ResolvedRoute], ResolvedRoute]:
    routes = config.resolved_routes()
    return {r.name: r for r in routes}, routes[-1]


def tick(writes: Writes, config: Config, now: dt.datetime) -> TickResult:
    """Act on everything due at `now`. Each batch is its own short write transaction."""
    result = TickResult()
    by_name, default = routes_by_name(config)
    with read_transaction(writes.db) as conn:
        groups = timers.due_groups(conn, now)
        muting = mutes.Muting.load(conn, config, now) if groups else None  # windows read once per tick
    for group in groups:
        route = by_name.get(group.route, default)  # a route a reload removed: the default's timers
        muted, unmuted, messages = mutes.settle_due(writes, config, muting, group, route, now=now, limit=BATCH,
                                                    notify=notify, step_values=step_values)
        result.muted, result.unmuted, result.messages = (result.muted + muted, result.unmuted + unmuted,
                                                         result.messages + messages)
        if group.muted:
            continue  # settled: extended or unmuted
        step = due_step(route, Level(group.level), acked=group.acked)
        while True:
            with writes.transaction() as conn:
                changed = timers.advance_due(conn, group, now=now, values=step_values(step, now), limit=BATCH)
                if changed:
                    result.messages += notify(conn, config, changed, step, now=now, actor="engine")
            _count(result, step, len(changed))
            if len(changed) < BATCH:
                break
    if result.changed or result.muted or result.unmuted:
        log.info("tick", extra={"escalated": sum(result.escalations.values()), "repeated": result.repeats,
                                "resumed": result.resumed, "messages": result.messages, "muted": result.muted,
                                "unmuted": result.unmuted})
    return result


def step_values(step: Step, now: dt.datetime) -> dict[str, Any]:
    """The column changes of a step, for a conditional UPDATE."""
    from ..store.models import Alert

    a = Alert.__table__.c
    values: dict[str, Any] = {"updated_at": now, "timer_started_at": now,
                              "next_action_at": None if step.next_delay is None else now + step.next_delay}
    if step.action is Action.ESCALATE:
        values.update(level=step.to_level.value, level_entered_at=now, escalation_count=a.escalation_count + 1,
                      sla_flags=a.sla_flags.op("|")(sla_flag(step.to_level, VISITED)))
    elif step.action is Action.REPEAT:
        values.update(repeat_count=a.repeat_count + 1)
    elif step.action is Action.RESUME:
        values.update(acked_at=None, acked_by=None, ack_expires_at=None, level_entered_at=now,
                      repeat_count=a.repeat_count + 1)
    if step.action in (Action.ESCALATE, Action.RESUME):  # a new level stint: its SLA clock starts anew
        values.update(sla_ack_breached_at=None, sla_resolve_breached_at=None)
    return values


def notify(conn: Connection, config: Config, rows: Iterable[Any], step: Step, *, now: dt.datetime, actor: str,
           comment: str | None = None, event_kind: EventKind | None = None,
           notification_kind: NotificationKind | None = None) -> int:
    """Events and notification intents for occurrences a step just changed (rows as returned by timers);
    `notification_kind` overrides the step's (an unmuted alert's first page is "firing")."""
    kind = notification_kind or step.notification_kind
    event_kind = event_kind or step.event_kind
    routes = config.resolved_routes()
    events: list[NewEvent] = []
    intents: list[outbox.Intent] = []
    for row in rows:
        repeat_no = row.repeat_count if step.bumps_repeat else 0
        if event_kind is not None:
            events.append(NewEvent(row.id, event_kind.value, now, actor=actor, comment=comment,
                                   from_level=step.from_level.value, to_level=step.to_level.value,
                                   details={"repeat": repeat_no} if step.bumps_repeat else None))
        if kind is None:
            continue
        for channel, target in paged_at(config, match_routes(routes, row.labels or {}), step.to_level):
            intents.append(outbox.Intent(row.id, channel, kind.value, step.to_level.value, row.group_id,
                                         row.group_key, repeat_no=repeat_no,
                                         message_key=message_key(config, channel, row.id), target=target,
                                         not_before=digest_due(config, channel, kind, now)))
    insert_events(conn, events)
    return len(outbox.enqueue(conn, intents, now=now).message_ids)


def digest_due(config: Config, channel: str, kind: NotificationKind, now: dt.datetime) -> dt.datetime | None:
    """A repeat to a chat channel with a repeat digest is due at the end of its window (channels/chat.py), so that
    the repeats of one window are claimed, and digested, together; anything else is due at once (None)."""
    if kind is not NotificationKind.REPEAT:
        return None
    digest = getattr(config.channels.get(channel), "repeat_digest", None)
    return digest_window_end(now, digest.window) if digest is not None else None


def _count(result: TickResult, step: Step, n: int) -> None:
    if not n:
        return
    if step.action is Action.ESCALATE:
        result.escalations[(step.from_level.value, step.to_level.value)] += n
    elif step.action is Action.REPEAT:
        result.repeats += n
    elif step.action is Action.RESUME:
        result.resumed += n
