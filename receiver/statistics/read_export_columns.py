"""The export's columns for analysis (issue #19), as SQL over `alerts`: the times and durations the statistics are
computed from, with the statistics' own definitions (write_aggregates.mtta_expr, mttr_expr), so that an analyst who
averages `time_to_ack_seconds` and `time_to_resolve_seconds` over the exported rows gets the summary's MTTA and MTTR
means (docs/statistics.md).

- `time_to_ack_seconds`: first_notified_at → first_acked_at, 0 for an ack before the first send; null unless both.
- `time_to_resolve_seconds`: starts_at → Alertmanager's endsAt, else the receiver's resolution; null while firing.
  Both rounded to the millisecond (SQLite's date arithmetic is exact to the millisecond only).
- `max_level`: the highest level the occurrence reached (L1 is the highest): each level it was at is a bit of
  `sla_flags` (config/sla_targets.py VISITED: its level when received, every level escalated to), and its level now.
- `paged_person`: the person the first message that paged someone for it reached (notifications.person of the
  lowest message id with a person, among the messages carrying it): one indexed probe per row, in the statement.
"""

from __future__ import annotations

import types

import sqlalchemy as sa

from ..config.sla_targets import VISITED, flag
from ..store.first_notified import first_notified_at
from ..store.models import Alert, Notification, NotificationItem
from .write_aggregates import mtta_expr, mtta_present, mttr_expr, mttr_present

_alerts = Alert.__table__
_messages = Notification.__table__
_items = NotificationItem.__table__

TIMES = ("first_notified_at", "first_acked_at")
NUMBERS = ("time_to_ack_seconds", "time_to_resolve_seconds")
TEXTS = ("max_level", "route", "paged_person")
ANALYSIS = ("first_notified_at", "first_acked_at", "time_to_ack_seconds", "time_to_resolve_seconds", "max_level",
            "route", "paged_person")


def time_column(name: str):
    """A time of the occurrence, by name (the first notification's is in its own table)."""
    return first_notified_at() if name == "first_notified_at" else _alerts.c[name]


def _dialect(name: str):
    """What write_aggregates' expressions read of a connection: its dialect's name."""
    return types.SimpleNamespace(dialect=types.SimpleNamespace(name=name))


def seconds(dialect: str, name: str):
    """time_to_ack_seconds or time_to_resolve_seconds, as the statistics define them; null when not defined."""
    conn = _dialect(dialect)
    expr, present = ((mtta_expr(conn), mtta_present()) if name == "time_to_ack_seconds"
                     else (mttr_expr(conn), mttr_present()))
    if dialect == "postgresql":
        expr = sa.cast(expr, sa.Numeric)  # extract(epoch) is numeric or double by version: round(numeric, 3)
    return sa.case((present, sa.func.round(expr, 3)), else_=sa.null())


def max_level():
    c = _alerts.c

    def reached(level: str):
        return sa.or_(c.sla_flags.op("&")(flag(level, VISITED)) != 0, c.level == level)

    return sa.case((reached("L1"), "L1"), (reached("L2"), "L2"), else_=c.level)


def paged_person(cell=lambda value: value):
    """`cell` wraps the person inside the subquery (CSV's neutralisation), so that it is probed once a row."""
    m, i = _messages.c, _items.c
    return (sa.select(cell(m.person)).select_from(_items.join(_messages, m.id == i.notification_id))
            .where(i.alert_id == _alerts.c.id, m.person.is_not(None))
            .order_by(m.id).limit(1).scalar_subquery())


def column(dialect: str, name: str, cell=lambda value: value):
    """The SQL of an analysis column other than the times (read_export formats those as its own); `cell` wraps a
    text value (CSV's neutralisation; max_level is always L1, L2 or L3)."""
    if name in NUMBERS:
        return seconds(dialect, name)
    if name == "max_level":
        return max_level()
    if name == "paged_person":
        return paged_person(cell)
    return cell(_alerts.c[name])
