"""When people were first told about each occurrence (MTTA's start): one narrow row per occurrence, written once.

It used to be a column of `alerts`. Setting it rewrote the whole row (about 700 bytes) a second time within seconds
of its insert, and on PostgreSQL every one of its twelve index entries too: a page filled by inserts has no room
for an in-place (HOT) update. That was about 38 µs of PostgreSQL per alert delivered, a third of its time at 100
alerts per webhook. An insert here is one small tuple and one primary-key entry.

Readers get `first_notified_at()`, a correlated lookup by primary key that stands where the column stood. The
column itself stays until a later migration (0012 explains why): the lookup falls back to it, for the sends of
replicas of an older version during a rolling upgrade.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .models import Alert, AlertFirstNotification
from .sql import bulk_insert

_alerts = Alert.__table__
_first = AlertFirstNotification.__table__


def first_notified_at():
    """The occurrence's first notification time (or NULL), for a query over `alerts`: label it as you need."""
    return sa.func.coalesce(sa.select(_first.c.notified_at).where(_first.c.alert_id == _alerts.c.id).scalar_subquery(),
                            _alerts.c.first_notified_at)


def mark(conn: Connection, ids: Sequence[int], *, at: dt.datetime) -> None:
    """The first time people were told about each occurrence; later sends leave it as it is (one statement)."""
    bulk_insert(conn, _first, [{"alert_id": i, "notified_at": at} for i in sorted(set(ids))], ignore_conflicts=True)
