"""Mutes: a route's time intervals (receiver.yml's mute_time_intervals / active_time_intervals) and maintenance
windows (made through the API, store/maintenance.py). A muted alert is stored and its timeline says so, but nothing
is sent, and its escalation clock waits: `muted_until` and `next_action_at` are the mute's end. At that end the
engine looks again (engine/tick.py): still muted, the mute goes on; else the alert is told at its current level
("firing" when that level was never paged, else "repeat") and the level starts anew, timers and SLA included.

Acknowledgement and resolution notices about a muted alert to channels told before the mute are held until the
mute ends (a message of their own whose first attempt is then), so that a paged PagerDuty incident still closes.

Active windows are read once per write batch or tick (one indexed query), never per alert; time intervals need no
database at all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any, Iterable, Mapping, Sequence

import sqlalchemy as sa

from ..config import Config
from ..config.routes import ResolvedRoute
from ..config.time_intervals import mute_end, mute_reason
from ..domain import EventKind, Level, NotificationKind
from ..matchers import Matcher, MatcherError, parse_matchers
from ..store import maintenance, timers
from ..store.alerts import NewEvent, insert_events
from ..store.models import Alert
from ..store.write_port import Writes
from .escalation import Action, Step, level_delay

_alerts = Alert.__table__


@dataclasses.dataclass(frozen=True, slots=True)
class Mute:
    reason: str  # "time_interval" | "maintenance"
    name: str  # the interval's name (or "outside active_time_intervals"), or the window's id
    until: dt.datetime

    def details(self) -> dict[str, Any]:
        key = "window" if self.reason == "maintenance" else "interval"
        return {"reason": self.reason, key: int(self.name) if key == "window" else self.name,
                "until": maintenance.iso(self.until)}

    def describe(self) -> str:
        what = f"maintenance window #{self.name}" if self.reason == "maintenance" else f"time interval {self.name}"
        return f"by {what} until {maintenance.iso(self.until)}"


def _longer(a: Mute | None, b: Mute | None) -> Mute | None:
    # Both hold from now on, each until its own end: muted until the later end, named after the one that lasts.
    if a is None or b is None:
        return a or b
    return a if a.until >= b.until else b


@dataclasses.dataclass(frozen=True, slots=True)
class ActiveWindow:
    id: int
    matchers: tuple[Matcher, ...]
    start: dt.datetime
    end: dt.datetime

    def mutes(self, labels: Mapping[str, str], at: dt.datetime) -> bool:
        return self.start <= at < self.end and all(m.matches(labels) for m in self.matchers)


def parse_windows(windows: Iterable[maintenance.Window]) -> list[ActiveWindow]:
    out = []
    for w in windows:
        try:
            matchers = tuple(m for text in w.matchers for m in parse_matchers(text))
        except MatcherError:  # checked when made; a matcher no longer valid mutes nothing rather than everything
            continue
        out.append(ActiveWindow(w.id, matchers, w.start, w.end))
    return out


def window_mute(windows: Sequence[ActiveWindow], labels: Mapping[str, str], at: dt.datetime) -> Mute | None:
    matching = [w for w in windows if w.mutes(labels, at)]
    if not matching:
        return None
    longest = max(matching, key=lambda w: (w.end, -w.id))
    return Mute("maintenance", str(longest.id), longest.end)


def route_mute(config: Config, route: ResolvedRoute, at: dt.datetime) -> Mute | None:
    """The route's time-interval mute at `at`: pure, and nothing at all to do without time_intervals."""
    if not config.time_intervals or not (route.mute_time_intervals or route.active_time_intervals):
        return None
    reason = mute_reason(route, config.time_intervals, at)
    if reason is None:
        return None
    return Mute("time_interval", reason, mute_end(route, config.time_intervals, at))


def routes_by_name(config: Config) -> tuple[dict[str, ResolvedRoute], ResolvedRoute]:
    routes = config.resolved_routes()
    return {r.name: r for r in routes}, routes[-1]


def route_mutes(config: Config, route_names: Iterable[str], at: dt.datetime) -> dict[str, Mute]:
    """Route name → its time-interval mute at `at`, for the routes muted (ingest.prepare: no database there)."""
    if not config.time_intervals:
        return {}
    by_name, default = routes_by_name(config)
    found = {name: route_mute(config, by_name.get(name, default), at) for name in set(route_names)}
    return {name: mute for name, mute in found.items() if mute is not None}


class Muting:
    """Everything that mutes at `now`: the config's time intervals and the windows active then (read once)."""

    def __init__(self, config: Config, windows: Sequence[ActiveWindow], now: dt.datetime):
        self.config, self.windows, self.now = config, list(windows), now
        self._by_route: dict[str, Mute | None] = {}

    @classmethod
    def load(cls, conn: Any, config: Config, now: dt.datetime) -> "Muting":
        return cls(config, parse_windows(maintenance.holding_between(conn, now, now)), now)

    def of_route(self, route: ResolvedRoute) -> Mute | None:
        if route.name not in self._by_route:
            self._by_route[route.name] = route_mute(self.config, route, self.now)
        return self._by_route[route.name]

    def of(self, route: ResolvedRoute, labels: Mapping[str, str]) -> Mute | None:
        return _longer(self.of_route(route), window_mute(self.windows, labels, self.now))

    def may_mute(self, route: ResolvedRoute) -> bool:
        return bool(self.windows) or self.of_route(route) is not None


# --- the tick --------------------------------------------------------------------------------------------------


def settle_due(writes: Writes, config: Config, muting: Muting, group: timers.DueGroup, route: ResolvedRoute, *,
               now: dt.datetime, limit: int, notify: Any, step_values: Any) -> tuple[int, int, int]:
    """Before a due group's step: mute the rows a mute now covers (their clock waits), and for a group whose mute
    ran out, extend it or unmute. Returns (muted, unmuted, messages); the rows left due take the normal step.
    `notify` and `step_values` are engine/tick.py's (passed in: tick imports this module)."""
    if group.muted:
        return _after_mute(writes, config, muting, group, route, now=now, limit=limit, notify=notify,
                           step_values=step_values)
    if not muting.may_mute(route):
        return 0, 0, 0
    muted, after = 0, 0
    while True:  # page by id: the rows left unmuted stay due, and are stepped by the caller afterwards
        with writes.transaction() as conn:
            page = timers.due_rows(conn, group, now=now, after_id=after, limit=limit)
            if not page:
                break
            after = page[-1].id
            by_mute: dict[Mute, list[int]] = {}
            for row in page:
                mute = muting.of(route, row.labels or {})
                if mute is not None:
                    by_mute.setdefault(mute, []).append(row.id)
            events = []
            for mute, ids in by_mute.items():
                changed = timers.update_open(conn, ids, where=timers.still_due(group, now),
                                             values=_mute_values(mute.until, now, acked=group.acked))
                events += [NewEvent(r.id, EventKind.MUTED.value, now, actor="engine", to_level=group.level,
                                    details=mute.details()) for r in changed]
                if group.acked:  # the ack ran out while muted: it expires; the mute's end tells the level again
                    events += [NewEvent(r.id, EventKind.ACK_EXPIRED.value, now, actor="engine",
                                        from_level=group.level, to_level=group.level) for r in changed]
                muted += len(changed)
            insert_events(conn, events)
        if len(page) < limit:
            break
    return muted, 0, 0


def _mute_values(until: dt.datetime, now: dt.datetime, *, acked: bool = False) -> dict[str, Any]:
    values: dict[str, Any] = {"muted_until": until, "next_action_at": until, "updated_at": now}
    if acked:
        values.update(acked_at=None, acked_by=None, ack_expires_at=None)
    return values


def _after_mute(writes: Writes, config: Config, muting: Muting, group: timers.DueGroup, route: ResolvedRoute, *,
                now: dt.datetime, limit: int, notify: Any, step_values: Any) -> tuple[int, int, int]:
    """Rows whose mute ran out (or was released early): still muted → extended, quietly; else unmuted."""
    unmuted = messages = 0
    level = Level(group.level)
    after = 0
    while True:
        with writes.transaction() as conn:
            page = timers.due_rows(conn, group, now=now, after_id=after, limit=limit)
            if not page:
                break
            after = page[-1].id
            extend: dict[dt.datetime, list[int]] = {}
            release: list[int] = []
            for row in page:
                mute = muting.of(route, row.labels or {})
                if mute is not None and not group.acked:
                    extend.setdefault(mute.until, []).append(row.id)
                else:
                    release.append(row.id)
            for until, ids in extend.items():
                timers.update_open(conn, ids, where=timers.still_due(group, now), values=_mute_values(until, now))
            if group.acked:  # acknowledged alerts are not told: they get the ack's own timer back
                timers.update_open(conn, release, where=timers.still_due(group, now), values={
                    "muted_until": None, "next_action_at": _alerts.c.ack_expires_at, "updated_at": now})
            elif release:
                n, m = _unmute(conn, config, release, group, route, level, now=now, notify=notify,
                               step_values=step_values)
                unmuted, messages = unmuted + n, messages + m
        if len(page) < limit:
            break
    return 0, unmuted, messages


def _unmute(conn: Any, config: Config, ids: list[int], group: timers.DueGroup, route: ResolvedRoute, level: Level,
            *, now: dt.datetime, notify: Any, step_values: Any) -> tuple[int, int]:
    """Tell the current level again and start it anew: "repeat" where it was paged before, else "firing" (an alert
    muted from its first page). Distinct kinds keep the outbox's intent keys distinct."""
    told = maintenance.told_at_level(conn, ids, level.value)
    delay = level_delay(route, level) if route.escalate else None
    unmuted = messages = 0
    for part, action, kind in (([i for i in ids if i in told], Action.RESUME, None),
                               ([i for i in ids if i not in told], Action.NONE, NotificationKind.FIRING)):
        if not part:
            continue
        step = Step(action, level, level, delay)
        values = {**step_values(step, now), "level_entered_at": now, "muted_until": None,
                  "sla_ack_breached_at": None, "sla_resolve_breached_at": None}
        changed = timers.update_open(conn, part, where=timers.still_due(group, now), values=values)
        messages += notify(conn, config, changed, step, now=now, actor="engine", event_kind=EventKind.UNMUTED,
                           notification_kind=kind)
        unmuted += len(changed)
    return unmuted, messages


# --- ingest: the first page of new alerts, resolution notices -------------------------------------------------


class IngestMutes:
    """The mutes of one set-based ingest write (engine/ingest.py): the time-interval mutes the snapshots carry
    (prepared with the config), and the windows active at their `now`s, read at most once and only when asked."""

    def __init__(self, conn: Any, nows: Sequence[dt.datetime]):
        self._conn, self._nows = conn, nows
        self._windows: list[ActiveWindow] | None = None
        self.muted: dict[int, tuple[Mute, str, dt.datetime]] = {}  # alert id → mute, level, when: see mute()
        self._closed_fps: dict[int, dict[int, str]] = {}  # per snapshot's decisions: occurrence id → fingerprint

    def windows(self) -> list[ActiveWindow]:
        if self._windows is None:
            self._windows = parse_windows(maintenance.holding_between(self._conn, min(self._nows), max(self._nows)))
        return self._windows

    def of(self, route_mute_: Mute | None, labels_json: str | Mapping[str, str], now: dt.datetime) -> Mute | None:
        windows = self.windows()
        if not windows:
            return route_mute_
        labels = json.loads(labels_json) if isinstance(labels_json, str) else labels_json
        return _longer(route_mute_, window_mute(windows, labels, now))

    def of_closed(self, prepared: Any, decisions: Sequence[Any], alert_id: int, now: dt.datetime) -> dt.datetime | None:
        """Until when the resolution notices of occurrence `alert_id`, closed by this snapshot, are held (None: not
        muted, sent now)."""
        by_id = self._closed_fps.get(id(decisions))
        if by_id is None:  # once per snapshot, not a scan of its decisions per closed occurrence
            by_id = self._closed_fps[id(decisions)] = {d.occurrence_id: d.alert.fingerprint for d in decisions
                                                       if d.occurrence_id is not None}
        fp = by_id.get(alert_id)
        if fp is None:
            return None
        mute = self.of(prepared.mutes.get(prepared.plans[fp].route), prepared.rows[fp]["labels"], now)
        return None if mute is None else mute.until

    def mute(self, alert_id: int, mute: Mute, level: str, now: dt.datetime) -> None:
        self.muted[alert_id] = (mute, level, now)

    def record(self, conn: Any, events: list[NewEvent]) -> None:
        """The `muted` events, and muted_until = next_action_at = the mute's end: one UPDATE per distinct end."""
        if not self.muted:
            return
        by_until: dict[dt.datetime, list[int]] = {}
        for alert_id, (mute, level, now) in self.muted.items():
            events.append(NewEvent(alert_id, EventKind.MUTED.value, now, actor="engine", to_level=level,
                                   details=mute.details()))
            by_until.setdefault(mute.until, []).append(alert_id)
        for until, ids in by_until.items():
            timers.update_open(conn, ids, values={"muted_until": until, "next_action_at": until})


def held(intent: Any, until: dt.datetime) -> Any:
    """A notice held until a mute ends: a message of its own, first tried then."""
    key = (intent.message_key or intent.group_id) + f"|held:{maintenance.iso(until)}"
    return dataclasses.replace(intent, message_key=key, at=until)


def hold_notices(conn: Any, config: Config, rows: Sequence[Any], intents: list[Any], *,
                 now: dt.datetime) -> list[Any]:
    """engine/lifecycle.py's acknowledgement and resolution notices, those of muted alerts held until the mute ends.
    `rows` carry route and labels (store/timers.py's returned columns)."""
    if not intents:
        return intents
    by_name, default = routes_by_name(config)
    muting = Muting.load(conn, config, now)
    until = {}
    for r in rows:
        mute = muting.of(by_name.get(r.route, default), r.labels or {})
        if mute is not None:
            until[r.id] = mute.until
    return [held(i, until[i.alert_id]) if i.alert_id in until else i for i in intents]


def release_by_hand(conn: Any, alert_ids: Sequence[int], *, now: dt.datetime, actor: str) -> None:
    """A person escalates alerts: they want the page, so a mute ends for them (an `unmuted` event here; the caller
    clears muted_until). The engine mutes them again when their new level's timer runs out inside a mute."""
    was = conn.scalars(sa.select(_alerts.c.id).where(_alerts.c.id.in_(list(alert_ids)), _alerts.c.muted_until > now))
    insert_events(conn, [NewEvent(i, EventKind.UNMUTED.value, now, actor=actor, details={"reason": "escalated by hand"})
                         for i in was])
