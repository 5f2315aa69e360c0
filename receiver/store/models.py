"""The schema: one row per alert occurrence, its timeline, the outbox, correlations, raw and rejected bodies.

Indexed columns hold short, truncated copies of labels (alertname, service, severity, instance): PostgreSQL btree
entries cap at about 2.7 kB, so whole label or annotation values are never indexed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .types import BigId, UTCDateTime

from .declarative import INDEXED_TEXT, NAMING_CONVENTION, Base  # noqa: F401 (re-exported: one metadata)


class Alert(Base):
    """One occurrence (firing period) of a fingerprint."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # firing | resolved
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime | None]
    alertname: Mapped[str] = mapped_column(String(INDEXED_TEXT), default="")
    severity: Mapped[str] = mapped_column(String(INDEXED_TEXT), default="")
    service: Mapped[str] = mapped_column(String(INDEXED_TEXT), default="")
    instance: Mapped[str] = mapped_column(String(INDEXED_TEXT), default="")
    labels: Mapped[dict[str, str]]
    annotations: Mapped[dict[str, str]]
    generator_url: Mapped[str] = mapped_column(Text, default="")
    group_key: Mapped[str] = mapped_column(Text, default="")
    group_id: Mapped[str] = mapped_column(String(16), default="")  # fingerprint of group_key, for grouping
    receiver: Mapped[str] = mapped_column(String(INDEXED_TEXT), default="")
    source: Mapped[str] = mapped_column(String(INDEXED_TEXT), default="")  # /webhook/<name>
    external_url: Mapped[str] = mapped_column(Text, default="")
    level: Mapped[str] = mapped_column(String(2))
    route: Mapped[str] = mapped_column(String(INDEXED_TEXT), default="default")
    escalate: Mapped[bool] = mapped_column(Boolean, default=True)
    level_entered_at: Mapped[dt.datetime]
    next_action_at: Mapped[dt.datetime | None]
    # When the running timer started (last repeat or resumed ack); None: level_entered_at. A reload re-times from it.
    timer_started_at: Mapped[dt.datetime | None]
    escalation_count: Mapped[int] = mapped_column(default=0)
    repeat_count: Mapped[int] = mapped_column(default=0)
    # Where the first notification's time was until migration 0012; it is now in alert_first_notifications
    # (AlertFirstNotification, below). Kept, unwritten, while a rolling upgrade may still run replicas of an older
    # version that set it (store/first_notified.py reads it as a fallback); a later migration folds and drops it.
    first_notified_at: Mapped[dt.datetime | None]
    # For MTTA (first notification sent → first ack): kept even when an ack is undone or expires.
    first_acked_at: Mapped[dt.datetime | None]
    acked_at: Mapped[dt.datetime | None]
    acked_by: Mapped[str | None] = mapped_column(String(INDEXED_TEXT))
    ack_expires_at: Mapped[dt.datetime | None]
    resolved_at: Mapped[dt.datetime | None]  # when the receiver learned of (or did) the resolution
    resolved_by: Mapped[str | None] = mapped_column(String(INDEXED_TEXT))
    received_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    # On-call (migration 0008). While muted (a route's time interval, a maintenance window) nothing is sent and the
    # escalation clock waits: next_action_at is the end of the mute, when the alert is told at its level again.
    muted_until: Mapped[dt.datetime | None]
    # SLA breaches of the current level stint (engine/sla_breaches.py): set once per target, cleared when the
    # level changes.
    sla_ack_breached_at: Mapped[dt.datetime | None]
    sla_resolve_breached_at: Mapped[dt.datetime | None]
    # Every level the occurrence was at, acknowledged at, and breached a target at (config/sla_targets.py FLAGS):
    # SLA compliance reads it with one GROUP BY, never the events. Only bits are ever added.
    sla_flags: Mapped[int] = mapped_column(default=0, server_default=text("0"))

    __table_args__ = (
        UniqueConstraint("fingerprint", "starts_at"),
        # At most one open occurrence per fingerprint: the arbiter of concurrent inserts by HA peers.
        Index(
            "uq_alerts_open_fingerprint",
            "fingerprint",
            unique=True,
            sqlite_where=text("status = 'firing'"),
            postgresql_where=text("status = 'firing'"),
        ),
        Index("ix_alerts_fingerprint_ends_at", "fingerprint", "ends_at"),
        Index("ix_alerts_starts_at", "starts_at"),
        Index("ix_alerts_service_starts_at", "service", "starts_at"),
        Index("ix_alerts_alertname_starts_at", "alertname", "starts_at"),
        Index("ix_alerts_severity_starts_at", "severity", "starts_at"),
        Index("ix_alerts_status_level", "status", "level"),
        Index("ix_alerts_group_id", "group_id"),
        # Statistics: occurrences resolved since the aggregates' watermark (statistics/write_aggregates.py).
        # Partial, so that inserting a firing occurrence never touches it; a resolution adds one entry.
        Index("ix_alerts_resolved_at", "resolved_at", sqlite_where=text("status = 'resolved'"),
              postgresql_where=text("status = 'resolved'")),
        # The engine's due scan: only rows with a pending action are in this index.
        Index(
            "ix_alerts_next_action_at",
            "next_action_at",
            sqlite_where=text("next_action_at IS NOT NULL"),
            postgresql_where=text("next_action_at IS NOT NULL"),
        ),
    )


class AlertFirstNotification(Base):
    """When people were first told about an occurrence (MTTA's start), written once by the send that told them.
    Not a column of alerts: setting it there rewrote the whole wide row and its indexes (store/first_notified.py)."""

    __tablename__ = "alert_first_notifications"

    alert_id: Mapped[int] = mapped_column(BigId, ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True,
                                          autoincrement=False)
    notified_at: Mapped[dt.datetime]


class AlertEvent(Base):
    """The timeline and audit trail of an occurrence."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime]
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(INDEXED_TEXT))
    comment: Mapped[str | None] = mapped_column(Text)
    from_level: Mapped[str | None] = mapped_column(String(2))
    to_level: Mapped[str | None] = mapped_column(String(2))
    details: Mapped[dict[str, Any] | None]

    __table_args__ = (
        Index("ix_alert_events_alert_id_at", "alert_id", "at"),
        Index("ix_alert_events_kind_at", "kind", "at"),
    )


class Notification(Base):
    """An outbox message: one rendered notification to one channel, covering one or more alerts of a group."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(INDEXED_TEXT))
    kind: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(2))
    group_key: Mapped[str] = mapped_column(Text, default="")
    group_id: Mapped[str] = mapped_column(String(16), default="")
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime]
    next_attempt_at: Mapped[dt.datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(INDEXED_TEXT))
    claimed_until: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # Retries stop here; None: created_at + delivery.retry.give_up_after. A manual retry sets a new deadline.
    give_up_at: Mapped[dt.datetime | None]
    last_attempt_at: Mapped[dt.datetime | None]
    last_duration_ms: Mapped[int | None]
    # Paging a person (migration 0008): the level's target ("schedule:primary-db", "person:alice"), and who it
    # resolved to at send time and how ("rotation", "override", "person"); None for plain channel messages.
    target: Mapped[str | None] = mapped_column(String(INDEXED_TEXT))
    person: Mapped[str | None] = mapped_column(String(INDEXED_TEXT))
    person_source: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_notifications_created_at", "created_at"),
        Index("ix_notifications_channel_created_at", "channel", "created_at"),
        # Statistics: messages attempted since the last aggregate refresh (a late or retried delivery about an
        # occurrence already aggregated re-derives its hour).
        Index("ix_notifications_last_attempt_at", "last_attempt_at"),
    )


class NotificationItem(Base):
    """One notification intent: this alert, this channel, this kind, level and repeat, exactly once."""

    __tablename__ = "notification_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"))
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(INDEXED_TEXT))
    kind: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(2))
    repeat_no: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        UniqueConstraint("alert_id", "channel", "kind", "level", "repeat_no"),
        Index("ix_notification_items_notification_id", "notification_id"),
    )


class Correlation(Base):
    __tablename__ = "correlations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    related_alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(default=1.0)
    actor: Mapped[str | None] = mapped_column(String(INDEXED_TEXT))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime]

    __table_args__ = (
        UniqueConstraint("alert_id", "related_alert_id", "type"),
        Index("ix_correlations_related_alert_id", "related_alert_id"),
    )


class AlertRollup(Base):
    """Daily aggregates kept when retention deletes the raw occurrences of a day, so that summaries and trends
    over old periods still answer (and say they come from rollups). One row per UTC day, service, alertname
    and severity. Percentiles come from the histograms: counts per duration bucket
    (receiver.statistics.write_rollups)."""

    __tablename__ = "alert_rollups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[dt.date]
    service: Mapped[str] = mapped_column(String(INDEXED_TEXT), default="")
    alertname: Mapped[str] = mapped_column(String(INDEXED_TEXT), default="")
    severity: Mapped[str] = mapped_column(String(INDEXED_TEXT), default="")
    occurrences: Mapped[int] = mapped_column(default=0)
    resolved: Mapped[int] = mapped_column(default=0)
    acked: Mapped[int] = mapped_column(default=0)
    escalated: Mapped[int] = mapped_column(default=0)  # occurrences escalated at least once
    escalations: Mapped[int] = mapped_column(default=0)  # level changes, summed
    levels: Mapped[dict[str, Any]] = mapped_column(default=dict)  # final level -> count
    mtta_count: Mapped[int] = mapped_column(default=0)
    mtta_sum: Mapped[float] = mapped_column(default=0.0)  # seconds
    mtta_hist: Mapped[dict[str, Any]] = mapped_column(default=dict)  # bucket upper bound (s) -> count
    mttr_count: Mapped[int] = mapped_column(default=0)
    mttr_sum: Mapped[float] = mapped_column(default=0.0)
    mttr_hist: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notifications: Mapped[int] = mapped_column(default=0)
    notifications_failed: Mapped[int] = mapped_column(default=0)  # dead

    __table_args__ = (
        UniqueConstraint("day", "service", "alertname", "severity"),
        Index("ix_alert_rollups_service_day", "service", "day"),
    )


class ReceiverState(Base):
    """Small shared facts of one installation, e.g. the key that signs one-click acknowledge links."""

    __tablename__ = "receiver_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime]


class WebhookBody(Base):
    """Raw accepted webhook bodies, deduplicated by hash, pruned after a few days: for replay and debugging."""

    __tablename__ = "webhook_bodies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[dt.datetime]
    source: Mapped[str] = mapped_column(String(INDEXED_TEXT), default="")
    size: Mapped[int]
    alert_count: Mapped[int]
    truncated_alerts: Mapped[int] = mapped_column(default=0)
    body: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_webhook_bodies_received_at", "received_at"),)


class RejectedWebhook(Base):
    """Dead letters: every body the webhook refused, with the reason, replayable after a fix."""

    __tablename__ = "rejected_webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[dt.datetime]
    source: Mapped[str] = mapped_column(String(INDEXED_TEXT), default="")
    status_code: Mapped[int]
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")
    content_type: Mapped[str] = mapped_column(String(INDEXED_TEXT), default="")
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    body_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    replayed_at: Mapped[dt.datetime | None]
    replay_status: Mapped[int | None]

    __table_args__ = (Index("ix_rejected_webhooks_received_at", "received_at"),)


class AlertmanagerSilence(Base):
    """A silence the receiver keeps in one Alertmanager for an acknowledged occurrence (routes with `ack_silence`).

    Written as an intent in the ack's transaction (state `pending`); the engine's silence loop creates it over HTTP
    (`active`, with Alertmanager's silence id), and expires it once the ack it belongs to has ended — unacked,
    expired or the occurrence resolved, by any path (`expiring`, then `expired`; `cancelled` when that happened
    before it was ever created). `acked_at` names the ack: a later ack of the same occurrence is a new silence."""

    __tablename__ = "alertmanager_silences"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    alertmanager: Mapped[str] = mapped_column(String(INDEXED_TEXT))
    acked_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    state: Mapped[str] = mapped_column(String(16))  # pending | active | expiring | expired | cancelled
    silence_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None]  # due (or claimed until); None once settled
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    __table_args__ = (
        UniqueConstraint("alert_id", "alertmanager", "acked_at"),
        Index("ix_alertmanager_silences_state_next_attempt_at", "state", "next_attempt_at"),
    )


# --- replay guards (migration 0007): small tables that retention empties ------------------------------------


class SessionRevocation(Base):
    """A dashboard session ended by signing out (web/dashboard_session.py): every worker and replica refuses its
    cookie. Kept until `expires_at`, when the cookie is too old to be accepted anyway (store/replay_guards.py)."""

    __tablename__ = "session_revocations"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoked_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]

    __table_args__ = (Index("ix_session_revocations_expires_at", "expires_at"),)


class PagerdutyEvent(Base):
    """A platform request acted on, by its id: PagerDuty webhook events (web/pagerduty_webhook.py), and, prefixed,
    Slack interactions ("slack:<sha256 of the body>"), Telegram updates ("telegram:<channel>:<update_id>") and
    Twilio messages ("twilio:<MessageSid>"): a replay is not acted on again. Kept 7 days (store/replay_guards.py);
    the table keeps its first name."""

    __tablename__ = "pagerduty_events"

    event_id: Mapped[str] = mapped_column(String(INDEXED_TEXT), primary_key=True)
    received_at: Mapped[dt.datetime]

    __table_args__ = (Index("ix_pagerduty_events_received_at", "received_at"),)


# --- statistics pre-aggregates (receiver.statistics.write_aggregates) -------------------------------------

# Duration histograms as one integer column per bucket of receiver.statistics.write_rollups (60 log-spaced bounds
# + "+Inf"):
# summed by SQL itself, so merging a month of rows is one aggregate query, not thousands of JSON documents.
STATS_HIST_BUCKETS = 61


def _stats_hist(prefix: str) -> list[Column]:
    return [Column(f"{prefix}_b{i:02d}", Integer, nullable=False, default=0) for i in range(STATS_HIST_BUCKETS)]


class AlertStats(Base):
    """Resolved occurrences summed per UTC hour (span 1) and UTC day (span 24) of `starts_at`, service, severity and
    final level: what summary, trends and health need. Written only by the aggregate refresh."""

    __table__ = Table(
        "alert_stats", Base.metadata,
        # The key is the primary key, and on SQLite the table is clustered on it (WITHOUT ROWID): a period's rows
        # are one contiguous range.
        Column("span", Integer, primary_key=True),  # hours: 1 or 24
        Column("bucket", UTCDateTime(), primary_key=True),  # start of the hour or UTC day
        Column("service", String(INDEXED_TEXT), primary_key=True, default=""),
        Column("severity", String(INDEXED_TEXT), primary_key=True, default=""),
        Column("level", String(2), primary_key=True),
        *[Column(name, Integer, nullable=False, default=0) for name in (
            "occurrences", "acked", "escalated", "escalations", "mtta_count", "mttr_count",
            "notifications_pending", "notifications_sending", "notifications_sent", "notifications_failed",
            "notifications_dead")],
        Column("mtta_sum", Double, nullable=False, default=0.0),
        Column("mttr_sum", Double, nullable=False, default=0.0),
        *_stats_hist("mtta"), *_stats_hist("mttr"),
        # Trends read counts only: an index that covers them.
        Index("ix_alert_stats_trends", "span", "bucket", "severity", "service", "level", "occurrences"),
        sqlite_with_rowid=False,
    )


class AlertStatsByAlert(Base):
    """Resolved occurrences summed per UTC hour (span 1) and day (span 24), alertname and service: the top lists."""

    __tablename__ = "alert_stats_by_alert"

    span: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    bucket: Mapped[dt.datetime] = mapped_column(primary_key=True)
    alertname: Mapped[str] = mapped_column(String(INDEXED_TEXT), primary_key=True, default="")
    service: Mapped[str] = mapped_column(String(INDEXED_TEXT), primary_key=True, default="")
    occurrences: Mapped[int] = mapped_column(default=0)
    escalations: Mapped[int] = mapped_column(default=0)
    noisy: Mapped[int] = mapped_column(default=0)  # resolved without any acknowledgement
    duration_sum: Mapped[float] = mapped_column(Double, default=0.0)  # startsAt → resolution, seconds
    duration_max: Mapped[float] = mapped_column(Double, default=0.0)

    __table_args__ = {"sqlite_with_rowid": False}  # clustered on the key, as alert_stats


class AlertStatsRepeat(Base):
    """Resolved occurrences whose fingerprint started another occurrence at most a day before: the only
    candidates for flapping, so that finding them never groups a month of fingerprints."""

    __tablename__ = "alert_stats_repeats"

    alert_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    fingerprint: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[dt.datetime]
    gap_seconds: Mapped[float] = mapped_column(Double)  # since the previous start of the fingerprint

    __table_args__ = (Index("ix_alert_stats_repeats_starts_at", "starts_at"),)


from .oncall_models import AlertStatsSla, MaintenanceWindow, ScheduleOverride  # noqa: E402,F401 (one metadata)
from .chat_models import ChatThreadRow  # noqa: E402,F401 (one metadata)
from .attempt_models import NotificationAttempt  # noqa: E402,F401 (one metadata)
from .sketch_models import AlertStatsSketch  # noqa: E402,F401 (one metadata)
