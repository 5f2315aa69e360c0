"""What people do to alerts: acknowledge, un-acknowledge, resolve, escalate — from the API, a one-click link, or
PagerDuty. Each is one conditional UPDATE over the occurrences it names, an event per changed occurrence with the
actor and comment, and the notifications it implies, in one transaction. No Flask here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..config import Config
from ..config.sla_targets import ACKED, flag as sla_flag
from ..domain import AlertStatus, EventKind, Level, NotificationKind
from ..store import ack_silences, outbox, timers
from ..store.first_notified import first_notified_at
from ..store.alerts import NewEvent, insert_events
from ..store.sql import chunks
from ..store.write_port import Writes
from ..store.models import Alert
from . import mutes
from .escalation import Action, Step, level_delay, manual_step
from .plan import message_key
from .tick import notify, routes_by_name, step_values

_alerts = Alert.__table__


class LifecycleError(Exception):
    """The action cannot apply: `status` 404 (no such alert) or 409 (makes no sense in its state)."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


@dataclasses.dataclass
class ActionResult:
    changed: list[int]  # occurrence ids this call changed
    unchanged: list[int]  # ids named that were already in the requested state
    messages: int = 0
    # MTTA and MTTR samples of this call, in seconds (an occurrence's first ack after its first notification; a
    # resolution's start to end): the caller that owns the process's metrics observes them (Metrics.observe_action).
    time_to_ack: list[float] = dataclasses.field(default_factory=list)
    time_to_resolve: list[float] = dataclasses.field(default_factory=list)


def _existing(conn: Connection, ids: Sequence[int]) -> dict[int, Any]:
    rows = conn.execute(sa.select(_alerts.c.id, _alerts.c.status, _alerts.c.level, _alerts.c.route,
                                  _alerts.c.acked_at, _alerts.c.acked_by, _alerts.c.escalate, _alerts.c.starts_at,
                                  first_notified_at().label("first_notified_at"), _alerts.c.first_acked_at)
                        .where(_alerts.c.id.in_(list(ids))))
    return {r.id: r for r in rows}


def _one(conn: Connection, alert_id: int, *, action: str) -> Any:
    row = _existing(conn, [alert_id]).get(alert_id)
    if row is None:
        raise LifecycleError(404, "not_found", f"no alert with id {alert_id}")
    if row.status != AlertStatus.FIRING.value:
        raise LifecycleError(409, "resolved", f"alert {alert_id} is resolved; it cannot be {action}")
    return row


def ack(writes: Writes, config: Config, alert_ids: Sequence[int], *, actor: str, now: dt.datetime,
        comment: str | None = None, ttl: dt.timedelta | None = None, strict: bool = True,
        ack_silence: bool = True) -> ActionResult:
    """Acknowledge open occurrences: escalation and repeats stop until the ack expires (`ttl`, else the route's
    ack_ttl, else never) or is undone. Told channels hear `acknowledged` (PagerDuty: acknowledge). On routes with
    `ack_silence`, an Alertmanager silence is recorded for the engine to create (`ack_silence=False`: the ack
    mirrors a silence that already exists)."""
    by_name, default = routes_by_name(config)
    with writes.transaction() as conn:
        if strict:
            for alert_id in alert_ids:
                _one(conn, alert_id, action="acknowledged")
        existing = _existing(conn, alert_ids)
        open_ids = [i for i, r in existing.items() if r.status == AlertStatus.FIRING.value]
        # One UPDATE per distinct ttl (usually one): the expiry is the next timer.
        by_ttl: dict[dt.timedelta | None, list[int]] = {}
        for i in open_ids:
            route = by_name.get(existing[i].route, default)
            by_ttl.setdefault(ttl if ttl is not None else route.ack_ttl, []).append(i)
        changed = []
        for expiry, ids in by_ttl.items():
            until = now + expiry if expiry else None
            changed += timers.update_open(conn, ids, where=[_alerts.c.acked_at.is_(None)],
                                          values={"acked_at": now, "acked_by": actor[:200], "ack_expires_at": until,
                                                  "next_action_at": until, "updated_at": now,
                                                  "muted_until": None,  # its timer is the ack's now
                                                  "sla_flags": _acked_at_level(),
                                                  "first_acked_at": sa.func.coalesce(
                                                      _alerts.c.first_acked_at,
                                                      sa.literal(now, _alerts.c.first_acked_at.type))})
        insert_events(conn, [NewEvent(r.id, EventKind.ACKED.value, now, actor=actor, comment=comment,
                                      details={"ttl_seconds": by_ttl_seconds(by_ttl, r.id)}) for r in changed])
        messages = _tell_told(conn, config, changed, NotificationKind.ACKNOWLEDGED, now=now)
        if ack_silence:
            _record_silences(conn, config, changed, by_ttl, now=now)
    ids = {r.id for r in changed}
    # MTTA, once per occurrence (its first ack); never notified yet: not a sample.
    to_ack = [max(0.0, (now - existing[i].first_notified_at).total_seconds()) for i in sorted(ids)
              if existing[i].first_acked_at is None and existing[i].first_notified_at is not None]
    return ActionResult(sorted(ids), sorted(set(open_ids) - ids), messages, time_to_ack=to_ack)


def _acked_at_level():
    """alerts.sla_flags with the ACKED bit of the occurrence's level added (SLA compliance: acknowledged while at
    that level; config/sla_targets.py)."""
    level = _alerts.c.level
    return _alerts.c.sla_flags.op("|")(sa.case(*((level == x.value, sla_flag(x, ACKED)) for x in Level), else_=0))


def _record_silences(conn: Connection, config: Config, rows: Sequence[Any], by_ttl: dict, *,
                     now: dt.datetime) -> None:
    """The ack's silences, as intents in its transaction: the engine creates them (engine/silences.py), never a
    request handler. A silence lasts as long as the ack, or reconcile.ack_silence_ttl for an ack without expiry."""
    by_name, default = routes_by_name(config)
    wanted = [r.id for r in rows if by_name.get(r.route, default).ack_silence]
    if not wanted or not config.reconcile.alertmanagers:
        return
    ends = {}
    for alert_id in wanted:
        seconds = by_ttl_seconds(by_ttl, alert_id)
        ends[alert_id] = now + (dt.timedelta(seconds=seconds) if seconds else config.reconcile.ack_silence_ttl)
    ack_silences.record(conn, sorted(ends.items()), config.reconcile.alertmanagers, acked_at=now, now=now)


def resolve_open(conn: Connection, config: Config, alert_ids: Sequence[int], *, actor: str, now: dt.datetime,
                 comment: str | None = None, details: dict[str, Any] | None = None,
                 where: Sequence[Any] = ()) -> ActionResult:
    """Resolve many open occurrences in the caller's transaction (the reconciler, a group's Resolve button): one
    conditional UPDATE (per 900 ids), their `resolved` events, and resolution notices to the channels that were
    told. `changed`: the ids this call resolved."""
    changed = timers.update_open(conn, alert_ids, where=where, values={
        "status": AlertStatus.RESOLVED.value, "ends_at": now, "resolved_at": now, "resolved_by": actor[:200],
        "next_action_at": None, "updated_at": now})
    insert_events(conn, [NewEvent(r.id, EventKind.RESOLVED.value, now, actor=actor, comment=comment, details=details)
                         for r in changed])
    messages = _tell_told(conn, config, changed, NotificationKind.RESOLVED, now=now)
    ids = [r.id for r in changed]
    return ActionResult(ids, [], messages, time_to_resolve=[max(0.0, (now - s).total_seconds())
                                                            for s in _starts_at(conn, ids)])


def _starts_at(conn: Connection, ids: Sequence[int]) -> list[dt.datetime]:
    return [s for part in chunks(sorted(ids), 900)
            for s in conn.scalars(sa.select(_alerts.c.starts_at).where(_alerts.c.id.in_(part)))]


def resolve_group(writes: Writes, config: Config, group_id: str, *, actor: str, now: dt.datetime,
                  comment: str | None = None) -> ActionResult:
    """Resolve every open occurrence of one Alertmanager group (a chat button on a group's message), in one
    transaction."""
    with writes.transaction() as conn:
        ids = timers.open_ids_of_group(conn, group_id=group_id)
        return resolve_open(conn, config, ids, actor=actor, now=now, comment=comment) if ids else ActionResult([], [])


def by_ttl_seconds(by_ttl: dict, alert_id: int) -> float | None:
    for expiry, ids in by_ttl.items():
        if alert_id in ids:
            return expiry.total_seconds() if expiry else None
    return None


def unack(writes: Writes, config: Config, alert_id: int, *, actor: str, now: dt.datetime,
          comment: str | None = None) -> ActionResult:
    """Undo an ack: the current level is notified again and its timer restarts."""
    by_name, default = routes_by_name(config)
    with writes.transaction() as conn:
        row = _one(conn, alert_id, action="un-acknowledged")
        if row.acked_at is None:
            return ActionResult([], [alert_id])
        level = Level(row.level)
        step = Step(Action.RESUME, level, level, level_delay(by_name.get(row.route, default), level))
        values = step_values(step, now)
        if not row.escalate:
            values["next_action_at"] = None
        changed = timers.update_open(conn, [alert_id], where=[_alerts.c.acked_at.is_not(None)], values=values)
        messages = notify(conn, config, changed, step, now=now, actor=actor, comment=comment,
                          event_kind=EventKind.UNACKED) if row.escalate else _event_only(conn, changed, now, actor,
                                                                                         comment, EventKind.UNACKED)
    return ActionResult([r.id for r in changed], [], messages)


def resolve(writes: Writes, config: Config, alert_id: int, *, actor: str, now: dt.datetime,
            comment: str | None = None) -> ActionResult:
    """Resolve by hand: everything stops; every channel that was told hears `resolved`. Alertmanager's later
    firing snapshots of this occurrence are then stale (startsAt is before its end) and change nothing."""
    with writes.transaction() as conn:
        row = _one(conn, alert_id, action="resolved")
        changed = timers.update_open(conn, [alert_id], values={
            "status": AlertStatus.RESOLVED.value, "ends_at": now, "resolved_at": now, "resolved_by": actor[:200],
            "next_action_at": None, "updated_at": now})
        insert_events(conn, [NewEvent(r.id, EventKind.RESOLVED.value, now, actor=actor, comment=comment)
                             for r in changed])
        messages = _tell_told(conn, config, changed, NotificationKind.RESOLVED, now=now)
    to_resolve = [max(0.0, (now - row.starts_at).total_seconds())] if changed else []  # MTTR: its end is now
    return ActionResult([r.id for r in changed], [], messages, time_to_resolve=to_resolve)


def escalate(writes: Writes, config: Config, alert_id: int, *, actor: str, now: dt.datetime,
             comment: str | None = None, target: Level | None = None) -> ActionResult:
    """Escalate by hand, one level or to `target`, at once. An ack does not survive it: the person escalating
    wants the next level to act, so its timers run again from the new level."""
    by_name, default = routes_by_name(config)
    with writes.transaction() as conn:
        row = _one(conn, alert_id, action="escalated")
        level = Level(row.level)
        step = manual_step(by_name.get(row.route, default), level, target)
        if step is None:
            raise LifecycleError(409, "not_above", f"alert {alert_id} is at {level.value}; "
                                 + (f"{target.value} is not above it" if target else "L1 is the top level"))
        values = {**step_values(step, now), "acked_at": None, "acked_by": None, "ack_expires_at": None,
                  "muted_until": None}  # escalating by hand pages, muted or not (engine/mutes.py)
        mutes.release_by_hand(conn, [alert_id], now=now, actor=actor)
        if not row.escalate:
            values["next_action_at"] = None
        changed = timers.update_open(conn, [alert_id], where=[_alerts.c.level == level.value], values=values)
        if not changed:
            raise LifecycleError(409, "changed", f"alert {alert_id} changed meanwhile; try again")
        messages = notify(conn, config, changed, step, now=now, actor=actor, comment=comment) if row.escalate \
            else _event_only(conn, changed, now, actor, comment, EventKind.ESCALATED, step)
    return ActionResult([alert_id], [], messages)


def ack_group(writes: Writes, config: Config, group_id: str, *, actor: str, now: dt.datetime,
              comment: str | None = None, ttl: dt.timedelta | None = None) -> ActionResult:
    """Acknowledge every open occurrence of one Alertmanager group (by its group id), in one statement."""
    with writes.db.connect() as conn:
        ids = timers.open_ids_of_group(conn, group_id=group_id)
    if not ids:
        return ActionResult([], [])
    return ack(writes, config, ids, actor=actor, now=now, comment=comment, ttl=ttl, strict=False)


def _event_only(conn, rows, now, actor, comment, kind: EventKind, step: Step | None = None) -> int:
    insert_events(conn, [NewEvent(r.id, kind.value, now, actor=actor, comment=comment,
                                  from_level=step.from_level.value if step else None,
                                  to_level=step.to_level.value if step else None) for r in rows])
    return 0


def _tell_told(conn: Connection, config: Config, rows: Sequence[Any], kind: NotificationKind, *,
               now: dt.datetime) -> int:
    """Notices (acknowledged, resolved) to exactly the channels that were told about each occurrence."""
    by_id = {r.id: r for r in rows}
    if not by_id:
        return 0
    intents = []
    for alert_id, channels in outbox.told_targets(conn, list(by_id)).items():
        r = by_id[alert_id]
        for channel, target in sorted(channels.items()):
            # Repeat number: an occurrence acked, un-acked and acked again sends a second notice. A channel that
            # paged a person tells that same person (target "person:<name>"), whoever is on call now.
            intents.append(outbox.Intent(alert_id, channel, kind.value, "", r.group_id, r.group_key,
                                         repeat_no=r.repeat_count,
                                         message_key=message_key(config, channel, alert_id), target=target))
    intents = mutes.hold_notices(conn, config, rows, intents, now=now)  # muted: held until the mute ends
    return len(outbox.enqueue(conn, intents, now=now).message_ids)
