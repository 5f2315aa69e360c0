"""On-call tables (migration 0008): schedule overrides and maintenance windows, made at run time through the API
and shared by every replica through the database."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .declarative import INDEXED_TEXT, Base
from .types import BigId


class ScheduleOverride(Base):
    """`person` is on call for `schedule` from `start_at` to `end_at`, whatever the rotations say."""

    __tablename__ = "schedule_overrides"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    schedule: Mapped[str] = mapped_column(String(INDEXED_TEXT))
    person: Mapped[str] = mapped_column(String(INDEXED_TEXT))
    start_at: Mapped[dt.datetime]
    end_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str | None] = mapped_column(String(INDEXED_TEXT))

    __table_args__ = (Index("ix_schedule_overrides_schedule_end_at", "schedule", "end_at"),)


class MaintenanceWindow(Base):
    """Alerts matching every matcher are muted from `start_at` to `end_at` (ending early moves `end_at`)."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    matchers: Mapped[list[str]]  # matcher strings as in routes, e.g. ['service="db"']
    start_at: Mapped[dt.datetime]
    end_at: Mapped[dt.datetime]
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str | None] = mapped_column(String(INDEXED_TEXT))
    ended_early_by: Mapped[str | None] = mapped_column(String(INDEXED_TEXT))

    __table_args__ = (Index("ix_maintenance_windows_end_at", "end_at"),)
