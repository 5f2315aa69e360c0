"""Synthetic occurrences written straight to the tables, for statistics and analytics datasets."""

from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receiver.store.models import Alert, AlertFirstNotification


def insert_alert_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT alert rows given as the API shows them: a row's `first_notified_at` goes to its own table."""
    alerts = [{k: v for k, v in r.items() if k != "first_notified_at"} for r in rows]
    firsts = [{"alert_id": r["id"], "notified_at": r["first_notified_at"]} for r in rows
              if r.get("first_notified_at") is not None]
    conn.execute(sa.insert(Alert.__table__), alerts)
    if firsts:
        conn.execute(sa.insert(AlertFirstNotification.__table__), firsts)
