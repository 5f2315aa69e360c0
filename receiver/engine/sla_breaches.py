"""SLA breaches: `check_breaches(writes, config, now)`, run by the engine just before each tick.

An occurrence entering a level starts that level's SLA clock (`level_entered_at`). When it is still unacknowledged
(the `ack` target) or still firing (the `resolve` target) a target after that, it has breached: the breach is stamped
on the occurrence (`sla_ack_breached_at`, `sla_resolve_breached_at`: level_entered_at + target, however late the
tick), an `sla_breached` event at that exact moment joins its timeline, and the channels of `sla.notify` are told.
A level change clears both stamps (engine/tick.step_values): each level stint has its own targets. Muted
occurrences never breach (their clock waits: the level starts anew when the mute ends), nor do routes with
`escalate: false`.

The breach also sets its bit in `sla_flags` (config/sla_targets.py), which the compliance statistics read.

Set-based and idempotent like the tick: per (level, target, duration) group of routes and batch, one claim of the
breached ids (`FOR UPDATE SKIP LOCKED` on PostgreSQL) and a conditional `UPDATE … WHERE <stamp> IS NULL …
RETURNING` of them, so two engines (or two ticks) record one breach; the cost follows the open occurrences at levels
with a target (measured: about 0.1 s per pass over 100,000 open, none due), never one query per occurrence.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import Counter, defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..config import Config
from ..config.sla_targets import BREACHED, TARGETS, flag
from ..domain import EventKind, Level, NotificationKind
from ..store import outbox
from ..store.alerts import NewEvent, insert_events
from ..store.models import Alert
from ..store.sql import chunks
from ..store.timers import shifted
from ..store.write_port import Writes
from .plan import accepts_level, message_key

log = logging.getLogger("receiver.engine")

BATCH = 2000  # occurrences per transaction, as in the tick

_alerts = Alert.__table__
_c = _alerts.c
_STAMP = {"ack": _c.sla_ack_breached_at, "resolve": _c.sla_resolve_breached_at}
KIND = {"ack": NotificationKind.SLA_ACK_BREACHED, "resolve": NotificationKind.SLA_RESOLVE_BREACHED}
_RETURNED = (_c.id, _c.group_id, _c.group_key, _c.level, _c.repeat_count, _c.level_entered_at)


@dataclasses.dataclass(frozen=True)
class Group:
    """The routes whose occurrences at `level` have the same `target` duration."""

    level: Level
    target: str  # "ack" | "resolve"
    duration: dt.timedelta
    routes: tuple[str, ...]
    default: bool  # also the occurrences of routes a reload removed (held to the default route's targets)


@dataclasses.dataclass
class SlaResult:
    breaches: Counter = dataclasses.field(default_factory=Counter)  # (level, target) -> count
    messages: int = 0

    @property
    def total(self) -> int:
        return sum(self.breaches.values())


def groups(config: Config) -> list[Group]:
    routes = config.resolved_routes()
    found: dict[tuple[Level, str, dt.timedelta], list[str]] = defaultdict(list)
    for route in routes:
        for level in Level:
            for target in TARGETS:
                duration = route.sla_for(level).get(target)
                if duration is not None:
                    found[(level, target, duration)].append(route.name)
    default = routes[-1].name
    return [Group(level, target, duration, tuple(names), default in names)
            for (level, target, duration), names in found.items()]


def check_breaches(writes: Writes, config: Config, now: dt.datetime) -> SlaResult:
    """Record every breach due at `now`: events at the breach moments, stamps, notices. Each batch is its own
    short write transaction."""
    result = SlaResult()
    known = tuple(r.name for r in config.resolved_routes())
    for group in groups(config):
        while True:
            with writes.transaction() as conn:
                claimed, rows = _stamp(conn, group, known, now)
                if rows:
                    result.messages += _record(conn, config, group, rows, now)
            result.breaches[(group.level.value, group.target)] += len(rows)
            if claimed < BATCH:
                break
    result.breaches = +result.breaches  # drop zeros
    if result.total:
        log.info("sla breached", extra={"breaches": {f"{lv}/{t}": n for (lv, t), n in result.breaches.items()},
                                        "messages": result.messages})
    return result


def _stamp(conn: Connection, group: Group, known: tuple[str, ...], now: dt.datetime) -> tuple[int, list[Any]]:
    """Claim up to BATCH breached occurrences of `group` and stamp them; (claimed, the rows this call stamped)."""
    stamp = _STAMP[group.target]
    route = _c.route.in_(group.routes)
    if group.default:
        route = sa.or_(route, _c.route.not_in(known))
    still = [_c.status == "firing", _c.level == group.level.value, route, _c.escalate, _c.muted_until.is_(None),
             stamp.is_(None), _c.level_entered_at <= now - group.duration]
    if group.target == "ack":
        still.append(_c.acked_at.is_(None))
    claim = sa.select(_c.id).where(*still).order_by(_c.id).limit(BATCH)
    if conn.dialect.name == "postgresql":
        claim = claim.with_for_update(skip_locked=True)
    # The ids first, then the UPDATE by id: as one statement (`id IN (claim)`), PostgreSQL may run the locking
    # subquery once per row when its statistics are off (measured: 13 s for 10,000 rows).
    ids = list(conn.scalars(claim))
    flags = _c.sla_flags.op("|")(flag(group.level, BREACHED[group.target]))  # for the statistics (read_sla)
    rows: list[Any] = []
    for part in chunks(ids, 900):
        stmt = (sa.update(_alerts).where(_c.id.in_(part), *still)
                .values({stamp: shifted(conn, _c.level_entered_at, group.duration), _c.sla_flags: flags})
                .returning(*_RETURNED))
        rows.extend(conn.execute(stmt))
    return len(ids), rows


def _record(conn: Connection, config: Config, group: Group, rows: list[Any], now: dt.datetime) -> int:
    """The events (at the breach moment, not `now`) and the notices of the breaches just stamped."""
    seconds = group.duration.total_seconds()
    level = group.level.value
    details = {"target": group.target, "level": level, "target_seconds": seconds}
    insert_events(conn, [NewEvent(r.id, EventKind.SLA_BREACHED.value, r.level_entered_at + group.duration,
                                  actor="engine", from_level=level, to_level=level, details=details)
                         for r in rows])
    channels = [c for c in config.sla.notify if accepts_level(config, c, group.level)]
    # repeat_no: a later stint at the same level (after an ack expired or was undone) is a new notice.
    intents = [outbox.Intent(r.id, channel, KIND[group.target].value, level, r.group_id, r.group_key,
                             repeat_no=r.repeat_count, message_key=message_key(config, channel, r.id))
               for r in rows for channel in channels]
    return len(outbox.enqueue(conn, intents, now=now).message_ids) if intents else 0
