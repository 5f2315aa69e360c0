"""Reconciliation with Alertmanager: what the receiver holds as firing, checked against what Alertmanager holds.

Why: Alertmanager sends no resolved webhook for an alert that resolved while silenced (nor while inhibited), and a
truncated webhook hides alerts; without a poll such an occurrence stays firing here for ever, and keeps escalating.

What we ask: `GET /api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true` on every configured
Alertmanager — every alert it still holds unresolved, in any state (it drops resolved alerts from the list whatever
the filters). Asking for active ones only would make every silenced or inhibited alert look gone: wrong, they still
fire.

What we decide (decide(), pure), for each firing occurrence stored here:

- listed by no Alertmanager → **resolved** (`resolved` event, actor `reconciler`, reason "reconciled: absent from
  alertmanager <urls>", resolution notices to the channels that were told). This is the silenced alert that ended,
  the inhibited one that ended, the one lost to a truncated payload. Only when every configured Alertmanager
  answered (an HA pair's members each hold their own alerts: absent means absent from all), only for occurrences
  received longer than `grace` ago (a poll may predate the webhook), and only when no Alertmanager started less than
  `grace` ago (it keeps no alerts across a restart until Prometheus re-sends them). The receiver's own
  AlertingPipelineDown (source `deadman`) is never Alertmanager's to list, so it is left alone.
- listed as silenced by a person's silence → **handled**: acknowledged (actor `alertmanager-silence`, no expiry), so the
  receiver stops escalating and re-paging what someone has deliberately muted in Alertmanager — what people expect
  from a silence. It is still firing (Alertmanager says so), so it is not resolved.
- acknowledged that way earlier and now listed without any person's silence (the silence expired or was deleted
  while the alert still fires) → **unacknowledged**: the current level is notified again and its timer restarts,
  as after an ack expiry. Acks made by people are never undone.
- listed as inhibited only → nothing: inhibition is automatic, and its root cause is the alert that pages.

Silences the receiver made itself for acks (`ack_silence`) are not a person's silence: they follow the receiver's ack.

Cost: one GET per Alertmanager (two with its status); one query for the stored firing set, one for our silence ids;
one conditional UPDATE for all the resolutions (per 900), one per distinct ack comment, one per rare unack.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Iterable, Mapping, Sequence

import sqlalchemy as sa

from ..alertmanager_api import AlertmanagerClient, AlertmanagerError, ListedAlert
from ..config import Config
from ..store import ack_silences as silence_store
from ..store.db import read_transaction
from ..store.write_port import Writes
from ..store.models import Alert
from . import lifecycle
from .deadman import SOURCE as DEADMAN_SOURCE

log = logging.getLogger("receiver.engine.reconcile")

ACTOR = "reconciler"  # resolutions
SILENCE_ACTOR = "alertmanager-silence"  # acks that mirror a person's silence in Alertmanager
_alerts = Alert.__table__


@dataclasses.dataclass(frozen=True, slots=True)
class StoredFiring:
    id: int
    fingerprint: str
    received_at: dt.datetime
    acked: bool
    acked_by: str | None


@dataclasses.dataclass(frozen=True)
class Listing:
    """What every Alertmanager together holds: fingerprint → ids of the silences that silence it (empty: active,
    inhibited or unprocessed)."""

    silenced_by: Mapping[str, frozenset[str]]

    @classmethod
    def merge(cls, answers: Iterable[Sequence[ListedAlert]]) -> "Listing":
        merged: dict[str, set[str]] = {}
        for alerts in answers:
            for a in alerts:
                merged.setdefault(a.fingerprint, set()).update(a.silenced_by)
        return cls({fp: frozenset(ids) for fp, ids in merged.items()})


@dataclasses.dataclass
class Drift:
    absent: list[int] = dataclasses.field(default_factory=list)  # resolve
    silenced: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # silence ids (text) -> ids to ack
    unsilenced: list[int] = dataclasses.field(default_factory=list)  # unack


def decide(stored: Sequence[StoredFiring], listing: Listing, *, ours: set[str], received_before: dt.datetime) -> Drift:
    """The corrections one poll calls for (see the module docstring)."""
    drift = Drift()
    for alert in stored:
        silences = listing.silenced_by.get(alert.fingerprint)
        if silences is None:
            if alert.received_at <= received_before:
                drift.absent.append(alert.id)
            continue
        theirs = sorted(silences - ours)
        if theirs and not alert.acked:
            drift.silenced.setdefault(", ".join(theirs), []).append(alert.id)
        elif not theirs and alert.acked and alert.acked_by == SILENCE_ACTOR:
            drift.unsilenced.append(alert.id)
    return drift


@dataclasses.dataclass
class ReconcileResult:
    complete: bool  # every Alertmanager answered and was old enough: the pass acted
    reason: str = ""  # why not, when not
    resolved: list[int] = dataclasses.field(default_factory=list)
    acked: list[int] = dataclasses.field(default_factory=list)
    unacked: list[int] = dataclasses.field(default_factory=list)
    actions: list[lifecycle.ActionResult] = dataclasses.field(default_factory=list)  # for their MTTA/MTTR samples


def stored_firing(conn) -> list[StoredFiring]:
    rows = conn.execute(sa.select(_alerts.c.id, _alerts.c.fingerprint, _alerts.c.received_at, _alerts.c.acked_at,
                                  _alerts.c.acked_by)
                        .where(sa.text("alerts.status = 'firing'"), _alerts.c.source != DEADMAN_SOURCE))
    return [StoredFiring(r.id, r.fingerprint, r.received_at, r.acked_at is not None, r.acked_by) for r in rows]


def reconcile_once(writes: Writes, config: Config, client: AlertmanagerClient, now: dt.datetime) -> ReconcileResult:
    """Poll every Alertmanager, then correct the stored firing set. Nothing changes unless all of them answered."""
    settings = config.reconcile
    urls = settings.alertmanagers
    answers = []
    for url in urls:
        try:
            started = client.started_at(url)
            if started > now - settings.grace:
                return ReconcileResult(False, f"alertmanager {url} started at {started.isoformat()}, less than "
                                              "reconcile.grace ago: its alert list may be incomplete")
            answers.append(client.alerts(url))
        except AlertmanagerError as exc:
            return ReconcileResult(False, str(exc))
    listing = Listing.merge(answers)
    with read_transaction(writes.db) as conn:
        stored = stored_firing(conn)
        ours = silence_store.ours(conn)
    received_before = now - settings.grace
    drift = decide(stored, listing, ours=ours, received_before=received_before)
    result = ReconcileResult(True)
    if drift.absent:
        reason = "reconciled: absent from alertmanager " + ", ".join(urls)
        with writes.transaction() as conn:
            resolved = lifecycle.resolve_open(
                conn, config, drift.absent, actor=ACTOR, now=now, comment=reason,
                details={"reason": reason, "alertmanagers": list(urls)},
                # A webhook may have re-opened or replaced it since the read: only what is still as decided.
                where=[_alerts.c.received_at <= received_before, _alerts.c.source != DEADMAN_SOURCE])
        result.resolved = resolved.changed
        result.actions.append(resolved)
    for silence_ids, ids in drift.silenced.items():
        done = lifecycle.ack(writes, config, ids, actor=SILENCE_ACTOR, now=now, strict=False, ack_silence=False,
                             ttl=dt.timedelta(0), comment=f"silenced in Alertmanager (silence {silence_ids})")
        result.acked += done.changed
        result.actions.append(done)
    for alert_id in drift.unsilenced:
        try:
            done = lifecycle.unack(writes, config, alert_id, actor=ACTOR, now=now,
                                   comment="no longer silenced in Alertmanager, still firing")
        except lifecycle.LifecycleError:  # resolved meanwhile
            continue
        result.unacked += done.changed
    if result.resolved or result.acked or result.unacked:
        log.info("reconciled with alertmanager", extra={"resolved": len(result.resolved), "acked": len(result.acked),
                                                       "unacked": len(result.unacked)})
    return result
