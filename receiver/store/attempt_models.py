"""Delivery attempts (migration 0010): every try to send an outbox message, kept with its message (issue #19)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .declarative import Base
from .types import BigId


class NotificationAttempt(Base):
    """One try to deliver message `notification_id`: when it started, how long it took, what the provider answered
    (`code`: the HTTP status or SMTP reply code, when there was one) and the outcome: sent, failed (will be
    retried) or dead; `error` is the redacted reason of a failure. Deleted with its message (retention)."""

    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"))
    attempt: Mapped[int]  # 1 for the first try
    at: Mapped[dt.datetime]
    duration_ms: Mapped[int | None]
    code: Mapped[int | None]
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_notification_attempts_notification_id", "notification_id"),)
