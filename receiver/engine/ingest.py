"""Ingest one webhook snapshot inside the caller's write transaction: occurrences, events, first notifications.

Cost is a handful of statements per body, whatever its size: one state lookup, one insert of new occurrences,
one close, one update, one insert of events, two of outbox rows. Nothing here commits; the web layer answers 2xx
only after its transaction commits.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections import Counter
from typing import Any

from sqlalchemy.engine import Connection

from ..config import Config
from ..domain import AlertStatus, EventKind, NotificationKind
from ..payload import Alert, WebhookPayload
from ..store import alerts as alert_store
from ..store import outbox
from ..store import webhooks as webhook_store
from .routing import level_for
from .snapshot import Decision, Outcome, decide_all, dedupe
from .plan import RoutePlan, plan_route

# Channel types that take one message per occurrence instead of one per group (stable dedup_key per alert).
PER_ALERT_CHANNEL_TYPES = frozenset({"pagerduty"})


@dataclasses.dataclass
class IngestResult:
    outcomes: Counter = dataclasses.field(default_factory=Counter)  # Outcome value -> count
    unknown_severities: Counter = dataclasses.field(default_factory=Counter)
    new_ids: list[int] = dataclasses.field(default_factory=list)
    closed_ids: list[int] = dataclasses.field(default_factory=list)
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


def prepare(payload: WebhookPayload, *, config: Config, now: dt.datetime, source: str = "") -> PreparedSnapshot:
    alerts = dedupe(payload.alerts)
    gid = group_id(payload.group_key)
    plans: dict[str, RoutePlan] = {}
    rows: dict[str, dict[str, Any]] = {}
    unknown: dict[str, str] = {}
    for alert in alerts:
        level = level_for(config.levels, alert.labels)
        if not level.known:
            unknown[alert.fingerprint] = level.severity or ""
        plan = plans[alert.fingerprint] = plan_route(config, alert.labels, level.level, now)
        rows[alert.fingerprint] = _occurrence_row(alert, payload, gid, plan, now=now, source=source)
    return PreparedSnapshot(payload, alerts, gid, plans, rows, unknown)


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
    result = IngestResult()
    if raw_body is not None and config.server.keep_raw_bodies:
        webhook_store.keep_body(conn, raw_body, source=source, now=now, alert_count=len(payload.alerts),
                                truncated_alerts=payload.truncated_alerts)
    prepared = prepared if prepared is not None else prepare(payload, config=config, now=now, source=source)
    if not prepared.alerts:
        return result
    pending = prepared.alerts
    # Two rounds at most: on PostgreSQL an HA peer may open the same occurrence between our lookup and our insert;
    # its row wins (ON CONFLICT DO NOTHING) and we re-decide those alerts against it.
    for _round in range(2):
        states = alert_store.fetch_state(conn, [a.fingerprint for a in pending])
        decisions = decide_all(pending, states)
        conflicted = _apply(conn, decisions, prepared, config=config, now=now, source=source, result=result)
        if not conflicted:
            break
        pending = conflicted
    else:
        result.outcomes[Outcome.DUPLICATE.value] += len(pending)
    return result


def _apply(conn, decisions: list[Decision], prepared: PreparedSnapshot, *, config: Config,
           now: dt.datetime, source: str, result: IngestResult) -> list[Alert]:
    payload, gid, plans = prepared.payload, prepared.gid, prepared.plans
    new_rows: list[dict[str, Any]] = []
    closes: dict[int, dt.datetime] = {}
    updates: list[dict[str, Any]] = []
    for d in decisions:
        if d.outcome is Outcome.NEW:
            new_rows.append(prepared.rows[d.alert.fingerprint])
        elif d.outcome is Outcome.NEW_RESOLVED:
            new_rows.append(dict(prepared.rows[d.alert.fingerprint], status=AlertStatus.RESOLVED.value,
                                 ends_at=d.ends_at, next_action_at=None, resolved_at=now, resolved_by="alertmanager"))
        elif d.outcome is Outcome.RESOLVED:
            closes[d.occurrence_id] = d.ends_at
        elif d.outcome is Outcome.UPDATED:
            updates.append({"b_id": d.occurrence_id, "b_starts_at": d.new_starts_at,
                            "b_annotations": d.alert.annotations, "b_generator_url": d.alert.generator_url})
            result.outcomes[Outcome.UPDATED.value] += 1
        else:
            result.outcomes[d.outcome.value] += 1

    inserted = alert_store.insert_occurrences(conn, new_rows)
    conflicted = [d.alert for d in decisions
                  if d.outcome in (Outcome.NEW, Outcome.NEW_RESOLVED) and d.alert.fingerprint not in inserted]
    alert_store.update_open(conn, updates, now=now)
    closed = alert_store.close_occurrences(conn, closes, now=now, by="alertmanager") if closes else []
    if len(closes) > len(closed):  # an HA peer closed them first
        result.outcomes[Outcome.DUPLICATE.value] += len(closes) - len(closed)

    events: list[alert_store.NewEvent] = []
    intents: list[outbox.Intent] = []
    for d in decisions:
        fp = d.alert.fingerprint
        if fp not in inserted:
            continue
        alert_id = inserted[fp]
        plan = plans[fp]
        result.outcomes[d.outcome.value] += 1
        if fp in prepared.unknown_severity:
            result.unknown_severities[prepared.unknown_severity[fp]] += 1
        events.append(alert_store.NewEvent(alert_id, EventKind.RECEIVED.value, now, actor="alertmanager",
                                           to_level=plan.level.value,
                                           details={"source": source, "receiver": payload.receiver, "route": plan.route}))
        if d.outcome is Outcome.NEW_RESOLVED:
            result.closed_ids.append(alert_id)
            events.append(alert_store.NewEvent(alert_id, EventKind.RESOLVED.value, now, actor="alertmanager",
                                               details={"ends_at": d.ends_at.isoformat()}))
            continue
        result.new_ids.append(alert_id)
        if plan.notify:
            for channel in plan.channels:
                per_alert = config.channels[channel].type in PER_ALERT_CHANNEL_TYPES
                intents.append(outbox.Intent(alert_id, channel, NotificationKind.FIRING.value, plan.level.value, gid,
                                             payload.group_key, message_key=f"alert:{alert_id}" if per_alert else ""))
    for alert_id in closed:
        result.outcomes[Outcome.RESOLVED.value] += 1
        result.closed_ids.append(alert_id)
        events.append(alert_store.NewEvent(alert_id, EventKind.RESOLVED.value, now, actor="alertmanager",
                                           details={"ends_at": closes[alert_id].isoformat()}))
    if closed:
        intents.extend(_resolution_intents(conn, closed, payload, gid, config))
    alert_store.insert_events(conn, events)
    result.messages += len(outbox.enqueue(conn, intents, now=now).message_ids)
    return conflicted


def _resolution_intents(conn, closed: list[int], payload: WebhookPayload, gid: str, config: Config) -> list[outbox.Intent]:
    """Resolution notices go to the channels that were actually told, whatever the routes say now."""
    intents = []
    for alert_id, channels in outbox.told_channels(conn, closed).items():
        for channel in sorted(channels):
            settings = config.channels.get(channel)
            per_alert = settings is not None and settings.type in PER_ALERT_CHANNEL_TYPES
            intents.append(outbox.Intent(alert_id, channel, NotificationKind.RESOLVED.value, "", gid, payload.group_key,
                                         message_key=f"alert:{alert_id}" if per_alert else ""))
    return intents


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
        "labels": a.labels,
        "annotations": a.annotations,
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
