"""Duration sketches of the statistics aggregates (migration 0011, issue #19): what makes a period's MTTA/MTTR
percentiles agree with the exact ones within 0.5 % when the period is too large to read raw
(statistics/write_sketches.py has the bin scheme)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Double, String
from sqlalchemy.orm import Mapped, mapped_column

from .declarative import Base


class AlertStatsSketch(Base):
    """Settled occurrences' MTTA or MTTR (`metric`) counted per UTC hour (span 1) and day (span 24) of `starts_at`
    and log bin (`bin`: values in (γ^(bin−1), γ^bin], all services, severities and levels together), with the
    smallest and largest value of the bin (so a period's min and max are exact). Written only by the aggregate
    refresh, beside alert_stats."""

    __tablename__ = "alert_stats_sketch"

    span: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    bucket: Mapped[dt.datetime] = mapped_column(primary_key=True)
    metric: Mapped[str] = mapped_column(String(4), primary_key=True)
    bin: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(default=0)
    min_value: Mapped[float] = mapped_column(Double)
    max_value: Mapped[float] = mapped_column(Double)

    __table_args__ = {"sqlite_with_rowid": False}  # clustered on the key, as alert_stats
