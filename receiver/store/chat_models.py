"""Chat threads (migration 0009): the root message a threading channel (Slack app, Telegram) posted for a
notification group, so that every later message of the group, from any process or replica, replies in it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .declarative import INDEXED_TEXT, Base
from .types import BigId


class ChatThreadRow(Base):
    """Group `group_id`'s thread in `channel`: the platform's conversation (Slack channel id, Telegram chat id)
    and root message id (Slack `ts`, Telegram message_id). Open until the group's resolution is sent with none of
    its alerts firing (`closed_at`); the next firing page then starts a new thread."""

    __tablename__ = "chat_threads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(INDEXED_TEXT))
    group_id: Mapped[str] = mapped_column(String(16))
    conversation: Mapped[str] = mapped_column(String(INDEXED_TEXT))
    root_id: Mapped[str] = mapped_column(String(INDEXED_TEXT))
    created_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None]

    __table_args__ = (
        Index("ix_chat_threads_channel_group_id", "channel", "group_id"),
        Index("ix_chat_threads_closed_at", "closed_at"),
    )
