"""Accepted bodies are kept once each, also when one batch of the writer carries the same body twice (Alertmanager's
retry of a request whose answer it never saw can land in the same group commit as the original)."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from receiver.store.db import create_db_engine, write_transaction
from receiver.store.webhooks import keep_body, keep_bodies

from ..conftest import T0


def test_a_batch_keeps_each_body_once_with_its_bytes_and_counts(db_url):
    engine = create_db_engine(db_url)
    first, second = b'{"alerts": [1]}', b'{"alerts": [2, 3]}' + bytes(range(256))  # not valid text: bytes kept as such
    try:
        with write_transaction(engine) as conn:
            keep_bodies(conn, [dict(body=first, source="am-1", now=T0, alert_count=1, truncated_alerts=0),
                               dict(body=second, source="am-2", now=T0, alert_count=2, truncated_alerts=1),
                               dict(body=first, source="am-1", now=T0, alert_count=1, truncated_alerts=0)])
        with write_transaction(engine) as conn:
            keep_body(conn, second, source="am-2", now=T0, alert_count=2, truncated_alerts=1)  # a later repeat
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT sha256, source, size, alert_count, truncated_alerts, body "
                                        "FROM webhook_bodies ORDER BY size")).all()
        assert [(r.sha256, r.source, r.size, r.alert_count, r.truncated_alerts, bytes(r.body)) for r in rows] == [
            (hashlib.sha256(first).hexdigest(), "am-1", len(first), 1, 0, first),
            (hashlib.sha256(second).hexdigest(), "am-2", len(second), 2, 1, second),
        ]
    finally:
        engine.dispose()
