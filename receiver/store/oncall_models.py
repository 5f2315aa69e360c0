"""On-call tables (migration 0008): schedule overrides and maintenance windows, made at run time through the API
and shared by every replica through the database; and the SLA compliance aggregate the statistics refresh writes."""

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


class AlertStatsSla(Base):
    """Settled occurrences of `escalate` routes counted per UTC hour (span 1) and day (span 24) of `starts_at` and
    every column SLA compliance groups raw rows by (statistics/read_sla.py): what it needs of a month without
    reading a month of occurrences. Written only by the aggregate refresh, like alert_stats. No status column: a
    settled occurrence is resolved."""

    __tablename__ = "alert_stats_sla"

    span: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    bucket: Mapped[dt.datetime] = mapped_column(primary_key=True)
    route: Mapped[str] = mapped_column(String(INDEXED_TEXT), primary_key=True)
    service: Mapped[str] = mapped_column(String(INDEXED_TEXT), primary_key=True)
    severity: Mapped[str] = mapped_column(String(INDEXED_TEXT), primary_key=True)
    level: Mapped[str] = mapped_column(String(2), primary_key=True)  # the level now (at resolution)
    unacked: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)  # 1: acked_at is null
    ever_acked: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)  # 1: first_acked_at is set
    sla_flags: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    occurrences: Mapped[int] = mapped_column(default=0)

    __table_args__ = {"sqlite_with_rowid": False}  # clustered on the key, as alert_stats: a period is one range
