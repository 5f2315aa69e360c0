"""A known history for the analytics tests (export, correlations, retention, and anyone's statistics).

    ds = Dataset()
    a = ds.alert(service="payments", starts_at=T, ends_at=T + 5 min, first_notified_at=…, first_acked_at=…)
    ds.message([a, b], status="dead")          # one outbox message about a and b (one item each)
    ds.event(a, "acked", at=…)                 # a timeline row (each alert gets a `received` event already)
    ds.link(a, b, type="manual", score=0.5)    # a correlations row
    ds.insert(db)                              # straight into the tables, on SQLite or PostgreSQL

`Dataset.history(seed)` builds a random but reproducible history with the edge cases (never acked, never
resolved, resolved by the receiver only, acked before the first send, acked after the resolution, messages shared
by several alerts, undelivered messages, midnight boundaries). The Python records (`Occ`, `Message`) are the
truth the tests recompute every number from.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import random
from typing import Any

import sqlalchemy as sa

from receiver.domain import fingerprint as fingerprint_of
from receiver.store.models import AlertEvent, Correlation, Notification, NotificationItem

from ..support.alert_rows import insert_alert_rows

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LEVEL_OF = {"critical": "L1", "warning": "L2", "info": "L3", "": "L3"}


@dataclasses.dataclass
class Occ:
    id: int
    alertname: str
    service: str
    severity: str
    instance: str
    starts_at: dt.datetime
    status: str = "resolved"
    ends_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    level: str = "L3"
    first_notified_at: dt.datetime | None = None
    first_acked_at: dt.datetime | None = None
    acked_by: str | None = None
    escalation_count: int = 0
    group_key: str = ""
    group_id: str = ""
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    receiver: str = "alert-receiver"
    source: str = ""
    fingerprint: str = ""
    messages: list[int] = dataclasses.field(default_factory=list)  # ids of the messages about it
    events: int = 0

    @property
    def end(self) -> dt.datetime | None:
        """Alertmanager's endsAt, else when the receiver resolved it."""
        return self.ends_at or self.resolved_at


@dataclasses.dataclass
class Message:
    id: int
    alert_ids: list[int]
    status: str
    created_at: dt.datetime


@dataclasses.dataclass
class Link:
    id: int
    alert_id: int
    related_alert_id: int
    type: str
    score: float
    actor: str | None
    comment: str | None


class Dataset:
    def __init__(self, first_id: int = 1):
        self.alerts: list[Occ] = []
        self.messages: list[Message] = []
        self.links: list[Link] = []
        self._events: list[dict[str, Any]] = []
        self._next = first_id

    # --- building ------------------------------------------------------------------------------------------

    def alert(self, *, alertname: str = "HighLatency", service: str = "payments", severity: str = "warning",
              instance: str = "", starts_at: dt.datetime = NOW - dt.timedelta(hours=1), **kw: Any) -> Occ:
        """An occurrence; `status` follows from ends_at/resolved_at unless given; labels are derived."""
        i = self._next
        self._next += 1
        labels = {"alertname": alertname, "service": service, "severity": severity, "instance": instance,
                  "n": str(i), **kw.pop("labels", {})}
        labels = {k: v for k, v in labels.items() if v != ""}
        if "status" not in kw:
            kw["status"] = "resolved" if (kw.get("ends_at") or kw.get("resolved_at")) else "firing"
        if kw["status"] == "resolved" and kw.get("resolved_at") is None:
            kw["resolved_at"] = kw.get("ends_at")
        kw.setdefault("level", LEVEL_OF.get(severity, "L3"))
        kw.setdefault("group_key", f'{{}}:{{alertname="{alertname}"}}')
        kw.setdefault("group_id", hashlib.blake2b(kw["group_key"].encode(), digest_size=8).hexdigest())
        if kw.get("first_acked_at") is not None:
            kw.setdefault("acked_by", "oncall")
        occ = Occ(id=i, alertname=alertname, service=service, severity=severity, instance=instance,
                  starts_at=starts_at, labels=labels, annotations=kw.pop("annotations", {"summary": f"{alertname} #{i}"}),
                  fingerprint=fingerprint_of(labels), **kw)
        self.alerts.append(occ)
        self.event(occ, "received", at=starts_at)
        return occ

    def message(self, alerts: list[Occ], *, status: str = "sent", created_at: dt.datetime | None = None,
                channel: str = "chat") -> Message:
        mid = len(self.messages) + 1
        created = created_at or (min(a.starts_at for a in alerts) if alerts else NOW)
        m = Message(mid, [a.id for a in alerts], status, created)
        self.messages.append(m)
        for a in alerts:
            a.messages.append(mid)
        return m

    def event(self, alert: Occ, kind: str, *, at: dt.datetime) -> None:
        alert.events += 1
        self._events.append({"alert_id": alert.id, "at": at, "kind": kind, "actor": "test"})

    def link(self, a: Occ, b: Occ, *, type: str = "manual", score: float = 1.0, actor: str | None = "analyst",
             comment: str | None = None) -> Link:
        link = Link(len(self.links) + 1, a.id, b.id, type, score, actor, comment)
        self.links.append(link)
        return link

    def by_id(self, alert_id: int) -> Occ:
        return next(a for a in self.alerts if a.id == alert_id)

    # --- storing -------------------------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for o in self.alerts:
            out.append({
                "id": o.id, "fingerprint": o.fingerprint, "status": o.status, "starts_at": o.starts_at,
                "ends_at": o.ends_at, "alertname": o.alertname, "severity": o.severity, "service": o.service,
                "instance": o.instance, "labels": o.labels, "annotations": o.annotations, "generator_url": "",
                "group_key": o.group_key, "group_id": o.group_id, "receiver": o.receiver, "source": o.source,
                "external_url": "", "level": o.level, "route": "default", "escalate": True,
                "level_entered_at": o.starts_at, "next_action_at": None, "timer_started_at": None,
                "escalation_count": o.escalation_count, "repeat_count": 0,
                "first_notified_at": o.first_notified_at, "first_acked_at": o.first_acked_at,
                "acked_at": o.first_acked_at, "acked_by": o.acked_by, "ack_expires_at": None,
                "resolved_at": o.resolved_at, "resolved_by": "test" if o.resolved_at else None,
                "received_at": o.starts_at, "updated_at": o.starts_at})
        return out

    def insert(self, db) -> "Dataset":
        """Write everything in one transaction (either backend); PostgreSQL's sequences move past the ids."""
        with db.begin() as conn:
            if self.alerts:
                insert_alert_rows(conn, self.rows())
            if self._events:
                conn.execute(sa.insert(AlertEvent.__table__), self._events)
            if self.messages:
                conn.execute(sa.insert(Notification.__table__), [
                    {"id": m.id, "channel": "chat", "kind": "firing", "level": "L2", "group_key": "", "group_id": "",
                     "status": m.status, "attempts": 1, "created_at": m.created_at,
                     "next_attempt_at": m.created_at if m.status in ("pending", "failed") else None}
                    for m in self.messages])
                # repeat_no = message id keeps items unique per (alert, channel, kind, level, repeat).
                items = [{"notification_id": m.id, "alert_id": a, "channel": "chat", "kind": "firing",
                          "level": "L2", "repeat_no": m.id} for m in self.messages for a in m.alert_ids]
                if items:
                    conn.execute(sa.insert(NotificationItem.__table__), items)
            if self.links:
                conn.execute(sa.insert(Correlation.__table__), [
                    {"id": k.id, "alert_id": k.alert_id, "related_alert_id": k.related_alert_id, "type": k.type,
                     "score": k.score, "actor": k.actor, "comment": k.comment, "created_at": NOW}
                    for k in self.links])
            if conn.dialect.name == "postgresql":
                for table in ("alerts", "alert_events", "notifications", "notification_items", "correlations"):
                    conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                         f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"))
        return self

    # --- a random history ----------------------------------------------------------------------------------

    @classmethod
    def history(cls, seed: int = 5, n: int = 300, *, days: int = 12, end: dt.datetime = NOW) -> "Dataset":
        """n occurrences starting over the `days` days before `end`, with every edge case the analytics meet."""
        rnd = random.Random(seed)
        ds = cls()
        start = end - dt.timedelta(days=days)
        services = ("payments", "checkout", "search")
        for i in range(n):
            starts = start + dt.timedelta(seconds=rnd.randint(0, days * 86400 - 1), microseconds=rnd.randint(0, 999999))
            if i % 19 == 0:  # exactly on a UTC midnight: the day it belongs to
                starts = starts.replace(hour=0, minute=0, second=0, microsecond=0)
            severity = rnd.choice(("critical", "warning", "info", ""))
            duration = dt.timedelta(seconds=rnd.choice((0, rnd.randint(1, 120), rnd.randint(60, 86400 * 3))))
            r = rnd.random()
            kw: dict[str, Any] = {}
            if r < 0.12:
                pass  # still firing (some of them very old)
            elif r < 0.27:
                kw["resolved_at"] = starts + duration  # resolved by the receiver: no endsAt
                kw["status"] = "resolved"
            else:
                kw["ends_at"] = starts + duration
                kw["resolved_at"] = kw["ends_at"] + dt.timedelta(seconds=rnd.randint(0, 60))
            if rnd.random() < 0.85:
                kw["first_notified_at"] = starts + dt.timedelta(seconds=rnd.randint(0, 90))
                a = rnd.random()
                if a < 0.45:  # acked, sometimes after the resolution
                    kw["first_acked_at"] = kw["first_notified_at"] + dt.timedelta(seconds=rnd.expovariate(1 / 600))
                elif a < 0.5:  # acked by API before the first send went out
                    kw["first_acked_at"] = kw["first_notified_at"] - dt.timedelta(seconds=5)
            elif rnd.random() < 0.3:
                kw["first_acked_at"] = starts + dt.timedelta(seconds=30)  # acked, never notified
            kw["escalation_count"] = rnd.choice((0, 0, 0, 1, 2))
            if kw["escalation_count"]:
                kw["level"] = {"L3": "L2", "L2": "L1", "L1": "L1"}[LEVEL_OF[severity]]
            name = rnd.choice(("HighLatency", "DiskFull", "ErrorRate"))
            occ = ds.alert(alertname=name, service=rnd.choice(services), severity=severity,
                           instance=f"host-{rnd.randint(1, 6)}:9100", starts_at=starts,
                           group_key=f'{{}}:{{alertname="{name}"}}/{i // 4}', **kw)
            for k in range(rnd.randint(0, 2)):
                ds.event(occ, rnd.choice(("notified", "escalated", "acked")), at=starts + dt.timedelta(minutes=k + 1))
        # Messages: one per alert mostly, some about several alerts (maybe of other days and services), a few
        # not delivered yet (their alerts must stay), some dead.
        occs = list(ds.alerts)
        for o in occs:
            if rnd.random() < 0.7:
                ds.message([o], status=rnd.choice(("sent", "sent", "sent", "dead")))
        for _ in range(n // 10):
            members = rnd.sample(occs, rnd.randint(2, 4))
            ds.message(members, status=rnd.choice(("sent", "dead", "pending", "failed", "sending", "sent")))
        pairs = set()
        for _ in range(n // 20):
            a, b = rnd.sample(occs, 2)
            kind = rnd.choice(("manual", "cause"))
            if (a.id, b.id, kind) not in pairs:
                pairs.add((a.id, b.id, kind))
                ds.link(a, b, type=kind, score=round(rnd.random(), 3))
        ds.message([], status="sent", created_at=start - dt.timedelta(days=1))  # already without items: swept
        return ds
