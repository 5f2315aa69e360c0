"""Core vocabulary shared by every layer: levels, statuses, event and notification kinds, fingerprints.

Nothing here does I/O; every other module may import it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Mapping


class Level(str, enum.Enum):
    """Escalation level; L1 is the top (critical), L3 the bottom (info)."""

    L1 = "L1"
    L2 = "L2"
    L3 = "L3"

    @property
    def rank(self) -> int:
        """3 for L1 down to 1 for L3, so that a higher rank is a more urgent level."""
        return 4 - int(self.value[1])

    def up(self) -> "Level":
        """The next level up; L1 stays L1."""
        return {Level.L3: Level.L2, Level.L2: Level.L1, Level.L1: Level.L1}[self]


class AlertStatus(str, enum.Enum):
    FIRING = "firing"
    RESOLVED = "resolved"


class EventKind(str, enum.Enum):
    """One entry of an occurrence's timeline (the `alert_events.kind` column)."""

    RECEIVED = "received"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    NOTIFIED = "notified"
    REPEATED = "repeated"
    ACKED = "acked"
    UNACKED = "unacked"
    ACK_EXPIRED = "ack_expired"
    COMMENTED = "commented"
    # On-call (issue #17)
    SLA_BREACHED = "sla_breached"  # at the breach; details: {"target": "ack"|"resolve", "level", "target_seconds"}
    MUTED = "muted"  # details: {"reason": "time_interval"|"maintenance", "until", ...}
    UNMUTED = "unmuted"
    NOBODY_ON_CALL = "nobody_on_call"  # a schedule had nobody on shift at send time; details name the fallback


class NotificationKind(str, enum.Enum):
    """Why a message is sent; the generic webhook document carries it as `kind`."""

    FIRING = "firing"
    ESCALATED = "escalated"
    REPEAT = "repeat"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    # An SLA target of the message's level was missed (engine/sla_breaches.py): to the `sla.notify` channels.
    SLA_ACK_BREACHED = "sla_ack_breached"
    SLA_RESOLVE_BREACHED = "sla_resolve_breached"
    # An edit of a chat thread's root message to show the group's state now (level, who acknowledged, resolved):
    # created after each reply a threading channel (Slack app, Telegram) posts in the thread (issue #18).
    UPDATE = "update"


class NotificationStatus(str, enum.Enum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # failed at least once, will be retried
    DEAD = "dead"  # gave up (permanent error or give_up_after passed)


class Role(str, enum.Enum):
    """Token roles; admin implies write implies read. webhook only posts webhooks."""

    WEBHOOK = "webhook"
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


@dataclasses.dataclass(frozen=True, slots=True)
class OpenOccurrence:
    id: int
    starts_at: dt.datetime
    annotations: Mapping[str, str]
    generator_url: str


@dataclasses.dataclass(frozen=True, slots=True)
class StoredState:
    """What the database knows of one fingerprint: its open occurrence and the end of its last closed one."""

    open: OpenOccurrence | None = None
    last_closed_end: dt.datetime | None = None


# Alertmanager (prometheus/common model) hashes label sets with FNV-1a 64, label names sorted,
# each name and value followed by the separator byte 0xff.
_FNV_OFFSET64 = 14695981039346656037
_FNV_PRIME64 = 1099511628211
_MASK64 = (1 << 64) - 1
_SEPARATOR = 0xFF


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set, as 16 lower-case hex digits."""
    h = _FNV_OFFSET64
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode("utf-8"):
                h = ((h ^ byte) * _FNV_PRIME64) & _MASK64
            h = ((h ^ _SEPARATOR) * _FNV_PRIME64) & _MASK64
    return f"{h:016x}"


# --- what a channel is given to send ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class MessageAlert:
    """One alert as a channel sees it: the occurrence's labels and times plus the links a person needs."""

    id: int
    fingerprint: str
    alertname: str
    status: str  # firing | resolved
    level: str  # the occurrence's current level (L1..L3)
    severity: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    generator_url: str
    acked_by: str | None = None
    url: str | None = None  # the receiver's page for this alert (server.public_url + /alerts/<id>), if known
    ack_url: str | None = None  # signed one-click acknowledge link, if server.public_url is set

    @property
    def summary(self) -> str:
        return self.annotations.get("summary") or self.alertname or self.fingerprint


@dataclasses.dataclass(frozen=True, slots=True)
class Recipient:
    """The person a message pages (a route's schedule or person target), resolved at send time: e-mail goes to
    `email`, SMS to `phone`, Slack mentions `slack_user`; other channels show the name."""

    name: str
    email: str | None = None
    phone: str | None = None
    slack_user: str | None = None
    source: str | None = None  # "rotation" | "override" | "person": why this person


@dataclasses.dataclass(frozen=True, slots=True)
class ChatThread:
    """Where one notification group's conversation lives in a chat channel: the root message, by the ids the
    platform gave it (Slack: channel id and the root's `ts`; Telegram: chat id and message_id)."""

    conversation: str
    root_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Posted:
    """What a threading channel's `send` returns when it posted a new root message: the ids the engine stores
    (store/chat_threads.py) so that later messages of the group, from any process, reply in its thread."""

    conversation: str
    root_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """One outbox message for one channel: a kind (firing, escalated, repeat, acknowledged, resolved), a level
    and the alerts of one Alertmanager group that it carries (one alert for per-occurrence channels)."""

    notification_id: int
    channel: str
    kind: str  # NotificationKind value
    level: str  # the level the message is about (for resolved/acknowledged: the alerts' level)
    group_key: str
    alerts: tuple[MessageAlert, ...]
    created_at: dt.datetime
    attempt: int = 1  # 1 for the first try
    summary_over: int = 20  # above this many alerts, channels for people send a summary (counts, first N, a link)
    receiver_url: str | None = None  # server.public_url
    external_url: str = ""  # Alertmanager's, from the webhook
    recipient: Recipient | None = None  # the person paged, for a message to a schedule or person; None: `to:`
    group_id: str = ""  # the group's short id (16 hex digits): what chat buttons carry to act on the whole group
    # The group's open thread in this channel (threading channels only); None: this message starts one.
    thread: ChatThread | None = None
    # > 0: a digest of the repeats of this many groups due to the channel in the same window, sent as one message
    # (alerts: all of theirs; group_key: ""). Never a thread root.
    digest_groups: int = 0

    @property
    def summarised(self) -> bool:
        return len(self.alerts) > self.summary_over

    @property
    def shown(self) -> tuple[MessageAlert, ...]:
        """The alerts a human-facing message lists: all of them, or the first `summary_over`."""
        return self.alerts[: self.summary_over]

    @property
    def firing_count(self) -> int:
        return sum(1 for a in self.alerts if a.status == AlertStatus.FIRING.value)


@dataclasses.dataclass(frozen=True, slots=True)
class Override:
    """A schedule override: `person` is on call for `schedule` from `start` (inclusive) to `end` (exclusive)."""

    id: int
    schedule: str
    person: str
    start: dt.datetime
    end: dt.datetime
