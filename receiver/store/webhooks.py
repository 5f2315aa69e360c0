"""Raw webhook bodies: accepted ones kept (deduplicated by hash) for replay and debugging, rejected ones as
dead letters with their reason (bounded), listable and replayable after a fix."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .models import RejectedWebhook, WebhookBody
from .sql import bulk_insert

_bodies = WebhookBody.__table__
_rejected = RejectedWebhook.__table__

# A dead letter keeps at most this much of the body: enough to see what went wrong, bounded against floods.
REJECTED_BODY_MAX = 1024 * 1024


def keep_body(conn: Connection, body: bytes, *, source: str, now: dt.datetime, alert_count: int,
              truncated_alerts: int) -> None:
    """Store an accepted body once: Alertmanager's retries and repeats are byte-identical, so they cost nothing."""
    keep_bodies(conn, [dict(body=body, source=source, now=now, alert_count=alert_count,
                            truncated_alerts=truncated_alerts)])


def keep_bodies(conn: Connection, bodies: list[dict[str, Any]]) -> None:
    """keep_body for several bodies in one statement, straight to the driver (the writer's batch): each dict holds
    keep_body's arguments (body, source, now, alert_count, truncated_alerts). On PostgreSQL this was one INSERT per
    body, a third of the writer's time in bench/ingest.py at one alert per webhook."""
    if not bodies:
        return
    rows = [dict(sha256=hashlib.sha256(b["body"]).hexdigest(), received_at=b["now"], source=b["source"][:200],
                 size=len(b["body"]), alert_count=b["alert_count"], truncated_alerts=b["truncated_alerts"],
                 body=b["body"]) for b in bodies]
    bulk_insert(conn, _bodies, rows, ignore_conflicts=True)


def prune_bodies(conn: Connection, *, older_than: dt.datetime) -> int:
    return conn.execute(sa.delete(_bodies).where(_bodies.c.received_at < older_than)).rowcount


def record_rejection(conn: Connection, *, body: bytes, size: int, source: str, status_code: int, reason: str,
                     detail: str, content_type: str, now: dt.datetime, keep_at_most: int) -> int:
    truncated = len(body) > REJECTED_BODY_MAX or size > len(body)
    new_id = conn.execute(
        sa.insert(_rejected)
        .values(
            received_at=now, source=source[:200], status_code=status_code, reason=reason[:64], detail=detail[:4000],
            content_type=content_type[:200], size=size, sha256=hashlib.sha256(body).hexdigest(),
            body=body[:REJECTED_BODY_MAX], body_truncated=truncated, replayed_at=None, replay_status=None,
        )
        .returning(_rejected.c.id)
    ).scalar_one()
    # Bounded: drop the oldest beyond the limit (one indexed delete).
    cutoff = conn.execute(
        sa.select(_rejected.c.id).order_by(_rejected.c.id.desc()).offset(keep_at_most).limit(1)
    ).scalar_one_or_none()
    if cutoff is not None:
        conn.execute(sa.delete(_rejected).where(_rejected.c.id <= cutoff))
    return new_id


_SUMMARY_COLUMNS = [c for c in _rejected.c if c.name != "body"]


def list_rejected(conn: Connection, *, limit: int, before_id: int | None = None) -> list[dict[str, Any]]:
    query = sa.select(*_SUMMARY_COLUMNS).order_by(_rejected.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(_rejected.c.id < before_id)
    return [dict(row._mapping) for row in conn.execute(query)]


def get_rejected(conn: Connection, rejected_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(_rejected).where(_rejected.c.id == rejected_id)).first()
    return dict(row._mapping) if row else None


def mark_replayed(conn: Connection, rejected_id: int, *, status: int, now: dt.datetime) -> None:
    conn.execute(sa.update(_rejected).where(_rejected.c.id == rejected_id).values(replayed_at=now, replay_status=status))
