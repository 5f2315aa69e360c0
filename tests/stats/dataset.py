"""A known history for the statistics tests: occurrences with chosen starts, ends, acks and notifications,
inserted straight into the tables, and kept as plain Python records for independent recomputation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import sqlalchemy as sa

from receiver.domain import fingerprint as fp_of
from receiver.store.models import Notification, NotificationItem

from ..support.alert_rows import insert_alert_rows

UTC = dt.timezone.utc
START = dt.datetime(2026, 10, 20, 0, 0, tzinfo=UTC)  # the period spans Europe's DST change of 2026-10-25
DAYS = 10
SERVICES = ("payments", "checkout", "search")
SEVERITIES = ("critical", "warning", "info", "")
LEVEL_OF = {"critical": "L1", "warning": "L2", "info": "L3", "": "L3"}


@dataclasses.dataclass
class Occ:
    id: int
    alertname: str
    service: str
    severity: str
    level: str
    starts_at: dt.datetime
    status: str
    ends_at: dt.datetime | None
    resolved_at: dt.datetime | None
    first_notified_at: dt.datetime | None
    first_acked_at: dt.datetime | None
    escalation_count: int
    fingerprint: str
    notifications: list[str]  # statuses of the messages about it


def build(seed: int = 7, n: int = 240) -> list[Occ]:
    rnd = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        severity = rnd.choice(SEVERITIES)
        service = rnd.choice(SERVICES)
        alertname = rnd.choice(("HighCPU", "HighLatency", "DiskFull", "ErrorRate"))
        labels_fp = fp_of({"alertname": alertname, "service": service, "instance": f"i{i}"})
        starts = START + dt.timedelta(seconds=rnd.randint(0, DAYS * 86400 - 1))
        if i % 17 == 0:  # bucket boundaries: exactly on an hour, and on a UTC midnight
            starts = starts.replace(minute=0, second=0, microsecond=0)
        if i % 23 == 0:
            starts = starts.replace(hour=0, minute=0, second=0, microsecond=0)
        kind = rnd.random()
        status, ends, resolved_at = "resolved", None, None
        duration = dt.timedelta(seconds=rnd.randint(30, 6 * 3600))
        if kind < 0.15:
            status = "firing"  # never resolved
        elif kind < 0.30:
            resolved_at = starts + duration  # resolved by the receiver: no endsAt from Alertmanager
        else:
            ends = starts + duration
            resolved_at = ends + dt.timedelta(seconds=rnd.randint(0, 60))
        notified = starts + dt.timedelta(seconds=rnd.randint(0, 120)) if rnd.random() < 0.9 else None
        acked = None
        r = rnd.random()
        if notified and r < 0.5:
            acked = notified + dt.timedelta(seconds=rnd.randint(5, 3600))  # may be after the resolution
        elif notified and r < 0.55:
            acked = notified - dt.timedelta(seconds=10)  # acked (by API) before the first send: counts as 0
        escalations = rnd.choice((0, 0, 0, 1, 2))
        notes = [rnd.choice(("sent", "sent", "sent", "dead", "pending", "failed")) for _ in range(rnd.randint(0, 3))]
        out.append(Occ(i, alertname, service, severity, LEVEL_OF[severity], starts, status, ends,
                       resolved_at, notified, acked, escalations, labels_fp, notes))
    # A flapping fingerprint: five occurrences within 50 minutes.
    base = START + dt.timedelta(days=3, hours=5)
    for k in range(5):
        s = base + dt.timedelta(minutes=10 * k)
        out.append(Occ(n + 1 + k, "Flappy", "search", "warning", "L2", s, "resolved", s + dt.timedelta(minutes=4),
                       s + dt.timedelta(minutes=4), None, None, 0, "f1a9f1a9f1a9f1a9", []))
    return out


def insert(db, occs: list[Occ]) -> None:
    rows, messages, items = [], [], []
    for o in occs:
        rows.append({
            "id": o.id, "fingerprint": o.fingerprint, "status": o.status, "starts_at": o.starts_at,
            "ends_at": o.ends_at if o.status == "resolved" else None, "alertname": o.alertname,
            "severity": o.severity, "service": o.service, "instance": "", "labels": {"alertname": o.alertname},
            "annotations": {}, "generator_url": "", "group_key": f"g{o.id % 9}", "group_id": f"{o.id % 9:016x}",
            "receiver": "", "source": "", "external_url": "", "level": o.level, "route": "default",
            "escalate": True, "level_entered_at": o.starts_at, "next_action_at": None,
            "escalation_count": o.escalation_count, "repeat_count": 0,
            "first_notified_at": o.first_notified_at, "first_acked_at": o.first_acked_at,
            "acked_at": o.first_acked_at, "acked_by": "x" if o.first_acked_at else None, "ack_expires_at": None,
            "resolved_at": o.resolved_at, "resolved_by": "test" if o.resolved_at else None,
            "received_at": o.starts_at, "updated_at": o.starts_at})
        for k, status in enumerate(o.notifications):
            mid = o.id * 10 + k
            messages.append({"id": mid, "channel": "chat", "kind": "firing", "level": o.level, "group_key": "",
                             "group_id": "", "status": status, "attempts": 1, "created_at": o.starts_at,
                             "next_attempt_at": None})
            items.append({"notification_id": mid, "alert_id": o.id, "channel": "chat", "kind": f"k{k}",
                          "level": o.level, "repeat_no": 0})
    with db.begin() as conn:
        insert_alert_rows(conn, rows)
        if messages:
            conn.execute(sa.insert(Notification.__table__), messages)
            conn.execute(sa.insert(NotificationItem.__table__), items)
