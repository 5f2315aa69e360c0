"""Ingest one webhook snapshot inside the caller's write transaction: occurrences, events, first notifications.

Cost is a handful of statements per body, whatever its size: one state lookup, one insert of new occurrences,
one close, one update, one insert of events, two of outbox rows. Nothing here commits; the web layer answers 2xx
only after its transaction commits.

prepare() does everything that needs no database (levels, routes, the rows, their JSON) before the write lock is
taken; apply_snapshot() writes one prepared snapshot, apply_snapshots() several with about the statements of one
(the SQLite writer's group commit, receiver/writer/) through the job IngestSnapshot (ingest_job.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections import Counter
from typing import Any, Sequence

from sqlalchemy.engine import Connection

from ..config import Config
from ..config.sla_targets import VISITED, flag as sla_flag
from ..domain import AlertStatus, EventKind, NotificationKind
from ..payload import Alert, WebhookPayload
from ..store import alerts as alert_store
from ..store import outbox
from ..store import webhooks as webhook_store
from ..store import watchdog as watchdog_store
from .routing import level_for
from .snapshot import Decision, Outcome, decide_all, dedupe
from .mutes import IngestMutes, route_mutes
from .plan import PER_ALERT_CHANNEL_TYPES, RoutePlan, plan_route

_json_dumps = json.dumps


@dataclasses.dataclass
class IngestResult:
    outcomes: Counter = dataclasses.field(default_factory=Counter)  # Outcome value -> count
    unknown_severities: Counter = dataclasses.field(default_factory=Counter)
    new_ids: list[int] = dataclasses.field(default_factory=list)
    closed_ids: list[int] = dataclasses.field(default_factory=list)
    resolve_seconds: list[float] = dataclasses.field(default_factory=list)  # startsAt -> endsAt of those closed (MTTR)
    messages: int = 0

    @property
    def changed(self) -> bool:
        return any(self.outcomes[o.value] for o in (Outcome.NEW, Outcome.NEW_RESOLVED, Outcome.UPDATED, Outcome.RESOLVED))


def group_id(group_key: str) -> str:
    """A short, indexable name for an Alertmanager group key (which can be kilobytes long)."""
    return hashlib.blake2b(group_key.encode("utf-8"), digest_size=8).hexdigest()


@dataclasses.dataclass
class PreparedSnapshot:
    """Everything about a snapshot that does not depend on the database, computed before the write transaction
    so that the time spent holding the write lock is only the time the database needs."""

    payload: WebhookPayload
    alerts: list[Alert]  # deduplicated, sorted by fingerprint
    gid: str
    plans: dict[str, RoutePlan]
    rows: dict[str, dict[str, Any]]  # the occurrence row each alert would open, as firing
    unknown_severity: dict[str, str]  # fingerprint -> severity not in the mapping
    # What the write needs from the config, so that applying a snapshot needs no config (the SQLite writer process
    # applies snapshots prepared by workers that may have reloaded theirs).
    now: dt.datetime | None = None
    source: str = ""
    keep_raw_body: bool = True
    per_alert_channels: frozenset[str] = frozenset()  # configured channels that take one message per occurrence
    watchdog: str | None = None  # the dead-man's alertname, when this snapshot carries it firing
    mutes: dict[str, Any] = dataclasses.field(default_factory=dict)  # route → its time-interval mute (mutes.Mute)


def prepare(payload: WebhookPayload, *, config: Config, now: dt.datetime, source: str = "") -> PreparedSnapshot:
    alerts = dedupe(payload.alerts)
    gid = group_id(payload.group_key)
    plans: dict[str, RoutePlan] = {}
    rows: dict[str, dict[str, Any]] = {}
    unknown: dict[str, str] = {}
    # The route of an alert depends only on the labels its routes' matchers name, its level only on its severity:
    # alerts of one group mostly share both, so each distinct plan is computed once (and shared, also when pickled).
    routed_by = _routed_by(config)
    deadman_name = config.deadman.alertname  # never notified, whatever its route (plan.escalates)
    known_plans: dict[tuple, RoutePlan] = {}
    for alert in alerts:
        labels = alert.labels
        level = level_for(config.levels, labels)
        if not level.known:
            unknown[alert.fingerprint] = level.severity or ""
        key = (level.level, labels.get("alertname") == deadman_name, *[labels.get(name) for name in routed_by])
        plan = known_plans.get(key)
        if plan is None:
            plan = known_plans[key] = plan_route(config, labels, level.level, now)
        plans[alert.fingerprint] = plan
        rows[alert.fingerprint] = _occurrence_row(alert, payload, gid, plan, now=now, source=source)
    per_alert = frozenset(name for name, settings in config.channels.items() if settings.type in PER_ALERT_CHANNEL_TYPES)
    return PreparedSnapshot(payload, alerts, gid, plans, rows, unknown, now=now, source=source,
                            keep_raw_body=config.server.keep_raw_bodies, per_alert_channels=per_alert,
                            watchdog=_watchdog(config, alerts),
                            mutes=route_mutes(config, (p.route for p in plans.values()), now))


def _watchdog(config: Config, alerts: list[Alert]) -> str | None:
    # Every webhook that carries the firing Watchdog counts, repeats included: Alertmanager re-sends it every
    # repeat_interval with the same startsAt, so only the receipt says the pipeline works (engine/deadman.py).
    name = config.deadman.alertname
    if config.deadman.enabled is False:
        return None
    seen = any(a.status is AlertStatus.FIRING and a.labels.get("alertname") == name for a in alerts)
    return name if seen else None


def _routed_by(config: Config) -> tuple[str, ...]:
    return tuple(sorted({m.name for route in config.resolved_routes() for m in route.matchers}))


def ingest(
    conn: Connection,
    payload: WebhookPayload,
    *,
    config: Config,
    now: dt.datetime,
    source: str = "",
    raw_body: bytes | None = None,
    prepared: PreparedSnapshot | None = None,
) -> IngestResult:
    prepared = prepared if prepared is not None else prepare(payload, config=config, now=now, source=source)
    return apply_snapshot(conn, prepared, raw_body=raw_body, now=now, source=source)


def apply_snapshot(conn: Connection, prepared: PreparedSnapshot, *, raw_body: bytes | None = None,
                   now: dt.datetime | None = None, source: str | None = None) -> IngestResult:
    """Write a prepared snapshot in the caller's transaction. Needs no config: everything it takes from the config
    was captured by prepare()."""
    now = now if now is not None else prepared.now
    source = source if source is not None else prepared.source
    payload = prepared.payload
    result = IngestResult()
    if raw_body is not None and prepared.keep_raw_body:
        webhook_store.keep_body(conn, raw_body, source=source, now=now, alert_count=len(payload.alerts),
                                truncated_alerts=payload.truncated_alerts)
    if prepared.watchdog:
        watchdog_store.record_seen(conn, now, alertname=prepared.watchdog)
    if not prepared.alerts:
        return result
    pending = prepared.alerts
    # Two rounds at most: on PostgreSQL an HA peer may open the same occurrence between our lookup and our insert;
    # its row wins (ON CONFLICT DO NOTHING) and we re-decide those alerts against it.
    for _round in range(2):
        states = alert_store.fetch_state(conn, [a.fingerprint for a in pending])
        [conflicted] = _apply(conn, [_Work(0, prepared, decide_all(pending, states), now, source, result)])
        if not conflicted:
            break
        pending = conflicted
    else:
        result.outcomes[Outcome.DUPLICATE.value] += len(pending)
    return result


class ConcurrentWriteError(RuntimeError):
    """apply_snapshots found a row another writer inserted meanwhile; apply each snapshot on its own instead."""


def apply_snapshots(conn: Connection, jobs: Sequence[tuple[PreparedSnapshot, bytes | None]]) -> list[IngestResult]:
    """Several prepared snapshots with the statements of about one (the SQLite writer's batch of webhooks): the same
    rows as apply_snapshot on each in turn. Snapshots that share a fingerprint are applied in their order, in
    successive rounds. Meant for a writer that holds the database's write lock: on a conflict with another writer it
    raises ConcurrentWriteError (roll back to a savepoint and apply them one by one)."""
    results = [IngestResult() for _ in jobs]
    bodies = [dict(body=raw, source=p.source, now=p.now, alert_count=len(p.payload.alerts),
                   truncated_alerts=p.payload.truncated_alerts)
              for p, raw in jobs if raw is not None and p.keep_raw_body]
    webhook_store.keep_bodies(conn, bodies)
    watchdogs = [p for p, _ in jobs if p.watchdog]
    if watchdogs:
        latest = max(watchdogs, key=lambda p: p.now)
        watchdog_store.record_seen(conn, latest.now, alertname=latest.watchdog)
    rounds: list[list[int]] = []
    last_round: dict[str, int] = {}  # fingerprint -> the last round that writes it
    for k, (p, _) in enumerate(jobs):
        if not p.alerts:
            continue
        r = 1 + max((last_round.get(a.fingerprint, -1) for a in p.alerts), default=-1)
        if r == len(rounds):
            rounds.append([])
        rounds[r].append(k)
        for a in p.alerts:
            last_round[a.fingerprint] = r
    for members in rounds:
        states = alert_store.fetch_state(conn, [a.fingerprint for k in members for a in jobs[k][0].alerts])
        work = [_Work(k, p, decide_all(p.alerts, states), p.now, p.source, results[k])
                for k in members for p in (jobs[k][0],)]
        if any(_apply(conn, work)):
            raise ConcurrentWriteError("an occurrence was inserted by another writer meanwhile")
    return results


@dataclasses.dataclass(eq=False)
class _Work:
    """One snapshot's share of a set-based write: its decisions, and where its outcomes go."""

    index: int
    prepared: PreparedSnapshot
    decisions: list[Decision]
    now: dt.datetime
    source: str
    result: IngestResult


def _apply(conn, works: list[_Work]) -> list[list[Alert]]:
    """The writes of the decisions of one or more snapshots whose fingerprints are distinct: one statement of each
    kind for all of them. Returns, per snapshot, the alerts whose new occurrence lost to a concurrent writer."""
    rows = _RowWrites.of(works)
    inserted = alert_store.insert_occurrences(conn, rows.new_rows)
    conflicted = [[d.alert for d in w.decisions
                   if d.outcome in (Outcome.NEW, Outcome.NEW_RESOLVED) and d.alert.fingerprint not in inserted]
                  for w in works]
    for now, updates in rows.updates.items():
        alert_store.update_open(conn, updates, now=now)
    closed = _close(conn, works, rows)
    news = _News()
    held = IngestMutes(conn, [w.now for w in works])  # reads the active maintenance windows once, if asked
    for w in works:
        _opened(w, rows, inserted, news, held)
    _closed(conn, closed, rows, news, held)
    held.record(conn, news.events)
    alert_store.insert_events(conn, news.events)
    if news.intents:
        enqueued = outbox.enqueue(conn, news.intents, now=works[0].now)
        for key in enqueued.message_keys:
            news.message_owner[key].result.messages += 1
    return conflicted


@dataclasses.dataclass
class _RowWrites:
    """What the decisions write to the occurrences, and which snapshot each write belongs to."""

    new_rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    owner: dict[str, _Work] = dataclasses.field(default_factory=dict)  # fingerprint -> the snapshot that opens it
    closes: dict[int, dt.datetime] = dataclasses.field(default_factory=dict)  # occurrence id -> ends_at
    close_owner: dict[int, _Work] = dataclasses.field(default_factory=dict)
    close_starts: dict[int, dt.datetime] = dataclasses.field(default_factory=dict)  # occurrence id -> startsAt
    updates: dict[dt.datetime, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)  # by `now`

    @classmethod
    def of(cls, works: list[_Work]) -> "_RowWrites":
        rows = cls()
        for w in works:
            for d in w.decisions:
                rows._add(w, d)
        return rows

    def _add(self, w: _Work, d: Decision) -> None:
        fp = d.alert.fingerprint
        if d.outcome is Outcome.NEW:
            self.new_rows.append(w.prepared.rows[fp])
            self.owner[fp] = w
        elif d.outcome is Outcome.NEW_RESOLVED:
            self.new_rows.append(dict(w.prepared.rows[fp], status=AlertStatus.RESOLVED.value, ends_at=d.ends_at,
                                      next_action_at=None, resolved_at=w.now, resolved_by="alertmanager"))
            self.owner[fp] = w
        elif d.outcome is Outcome.RESOLVED:
            self.closes[d.occurrence_id] = d.ends_at
            self.close_owner[d.occurrence_id] = w
            self.close_starts[d.occurrence_id] = d.alert.starts_at
        elif d.outcome is Outcome.UPDATED:
            self.updates.setdefault(w.now, []).append({
                "b_id": d.occurrence_id, "b_starts_at": d.new_starts_at, "b_annotations": d.alert.annotations,
                "b_generator_url": d.alert.generator_url})
            w.result.outcomes[Outcome.UPDATED.value] += 1
        else:
            w.result.outcomes[d.outcome.value] += 1


def _close(conn, works: list[_Work], rows: _RowWrites) -> list[int]:
    """Close the resolved occurrences, each snapshot's with its own `now` as resolved_at; returns the ids closed."""
    closed: list[int] = []
    for w in works:
        mine = {i: e for i, e in rows.closes.items() if rows.close_owner[i] is w}
        if mine:
            done = alert_store.close_occurrences(conn, mine, now=w.now, by="alertmanager")
            closed.extend(done)
            if len(mine) > len(done):  # an HA peer closed them first
                w.result.outcomes[Outcome.DUPLICATE.value] += len(mine) - len(done)
    return closed


@dataclasses.dataclass
class _News:
    """The events and notification intents of a write, and the snapshot each message key counts for."""

    events: list[alert_store.NewEvent] = dataclasses.field(default_factory=list)
    intents: list[outbox.Intent] = dataclasses.field(default_factory=list)
    message_owner: dict[str, _Work] = dataclasses.field(default_factory=dict)

    def tell(self, w: _Work, alert_id: int, channel: str, kind: NotificationKind, level: str,
             target: str | None = None, hold: dt.datetime | None = None) -> None:
        prepared = w.prepared
        # One message per group per snapshot (as if each snapshot were applied alone), or per alert.
        key = f"alert:{alert_id}" if channel in prepared.per_alert_channels else f"{w.index}|{prepared.gid}"
        if hold is not None:  # held until a mute ends (engine/mutes.py): a message of its own, first tried then
            key += f"|held:{hold.isoformat()}"
        self.message_owner[key] = w
        self.intents.append(outbox.Intent(alert_id, channel, kind.value, level, prepared.gid,
                                          prepared.payload.group_key, message_key=key, at=hold or w.now,
                                          target=target))


def _opened(w: _Work, rows: _RowWrites, inserted: dict[str, int], news: _News, held: IngestMutes) -> None:
    """The `received` events, outcomes and first notifications of the occurrences snapshot `w` opened."""
    prepared, result, now = w.prepared, w.result, w.now
    received_details: dict[str, str] = {}  # per route, encoded once: the same for every alert of the snapshot
    for d in w.decisions:
        fp = d.alert.fingerprint
        if fp not in inserted or rows.owner.get(fp) is not w:
            continue
        alert_id, plan = inserted[fp], prepared.plans[fp]
        result.outcomes[d.outcome.value] += 1
        if fp in prepared.unknown_severity:
            result.unknown_severities[prepared.unknown_severity[fp]] += 1
        details = received_details.get(plan.route)
        if details is None:
            details = received_details[plan.route] = _json_dumps(
                {"source": w.source, "receiver": prepared.payload.receiver, "route": plan.route})
        news.events.append(alert_store.NewEvent(alert_id, EventKind.RECEIVED.value, now, actor="alertmanager",
                                                to_level=plan.level.value, details=details))
        if d.outcome is Outcome.NEW_RESOLVED:
            result.closed_ids.append(alert_id)
            news.events.append(alert_store.NewEvent(alert_id, EventKind.RESOLVED.value, now, actor="alertmanager",
                                                    details={"ends_at": d.ends_at.isoformat()}))
            continue
        result.new_ids.append(alert_id)
        if plan.notify:
            mute = held.of(prepared.mutes.get(plan.route), prepared.rows[fp]["labels"], now)
            if mute is not None:  # stored and on the timeline, told nothing: its clock waits for the mute's end
                held.mute(alert_id, mute, plan.level.value, now)
                continue
            for channel, target in plan.paged():
                news.tell(w, alert_id, channel, NotificationKind.FIRING, plan.level.value, target)


def _closed(conn, closed: list[int], rows: _RowWrites, news: _News, held: IngestMutes) -> None:
    """The outcomes, `resolved` events and resolution notices of the occurrences closed."""
    for alert_id in closed:
        w = rows.close_owner[alert_id]
        w.result.outcomes[Outcome.RESOLVED.value] += 1
        w.result.closed_ids.append(alert_id)
        w.result.resolve_seconds.append((rows.closes[alert_id] - rows.close_starts[alert_id]).total_seconds())
        news.events.append(alert_store.NewEvent(alert_id, EventKind.RESOLVED.value, w.now, actor="alertmanager",
                                                details={"ends_at": rows.closes[alert_id].isoformat()}))
    if closed:
        # Resolution notices go to the channels that were actually told, whatever the routes say now.
        for alert_id, channels in outbox.told_targets(conn, closed).items():
            w = rows.close_owner[alert_id]
            hold = held.of_closed(w.prepared, w.decisions, alert_id, w.now)  # muted: held until the mute ends
            for channel, target in sorted(channels.items()):  # a person paged hears it too, not whoever is on now
                news.tell(w, alert_id, channel, NotificationKind.RESOLVED, "", target, hold)


def _occurrence_row(a: Alert, payload: WebhookPayload, gid: str, plan: RoutePlan, *, now: dt.datetime,
                    source: str) -> dict[str, Any]:
    """The row of a new firing occurrence (a first-seen resolved one overrides status and end on top)."""
    return {
        "fingerprint": a.fingerprint,
        "status": AlertStatus.FIRING.value,
        "starts_at": a.starts_at,
        "ends_at": None,
        "alertname": alert_store.clip(a.labels.get("alertname")),
        "severity": alert_store.clip(a.labels.get("severity")),
        "service": alert_store.clip(a.labels.get("service")),
        "instance": alert_store.clip(a.labels.get("instance")),
        # JSON encoded here, in the worker, not under the write lock (store.sql stores a str as encoded JSON).
        "labels": _json_dumps(a.labels),
        "annotations": _json_dumps(a.annotations),
        "generator_url": a.generator_url,
        "group_key": payload.group_key,
        "group_id": gid,
        "receiver": alert_store.clip(payload.receiver),
        "source": alert_store.clip(source),
        "external_url": payload.external_url,
        "level": plan.level.value,
        "route": alert_store.clip(plan.route),
        "escalate": plan.notify,
        "level_entered_at": now,
        "next_action_at": plan.next_action_at,
        "sla_flags": sla_flag(plan.level, VISITED),  # its first level (config/sla_targets.py)
        "escalation_count": 0,
        "repeat_count": 0,
        "acked_at": None,
        "acked_by": None,
        "ack_expires_at": None,
        "resolved_at": None,
        "resolved_by": None,
        "received_at": now,
        "updated_at": now,
    }
