"""The two hot lookups of the write path keep index plans on PostgreSQL tables it has no statistics for yet.

A new database under its first storm has no statistics (autovacuum analyses a table a minute at the earliest), and
there the planner took `status = 'firing'` for as selective as a fingerprint and an IN list of message ids for most
of notification_items: every webhook scanned every firing alert, every delivery batch scanned both tables (bench:
20 ms and 17 ms a call). Each test checks the plan of the statement in use and, as a control that the trap is really
set in its database, the plan of the old form.
"""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from receiver.store import migrate
from receiver.store.alerts import _STATE_POSTGRESQL
from receiver.store.db import create_db_engine
from receiver.store.outbox import _load_alerts_postgresql

pytestmark = pytest.mark.postgres

ALERTS = 20_000
_numbers = itertools.count()


@pytest.fixture
def unanalysed(pg_server):
    """A new migrated database with 20,000 firing alerts and a one-alert message each, never analysed."""
    engine = create_db_engine(pg_server.create_database(f"plans_{next(_numbers)}"))
    migrate.upgrade(engine)
    with engine.begin() as conn:
        for table in ("alerts", "notifications", "notification_items"):
            conn.execute(sa.text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
        conn.execute(sa.text(
            "INSERT INTO alerts (fingerprint, status, starts_at, alertname, severity, service, instance, labels, "
            "annotations, generator_url, group_key, group_id, receiver, source, external_url, level, route, escalate, "
            "level_entered_at, next_action_at, escalation_count, repeat_count, received_at, updated_at) "
            "SELECT md5(g::text), 'firing', now(), 'A', 'critical', 's', 'i', '{}', '{}', '', 'k', 'g', 'r', '', '', "
            "'L1', 'default', true, now(), now() + interval '5 minutes', 0, 0, now(), now() "
            f"FROM generate_series(1, {ALERTS}) AS g"))
        conn.execute(sa.text(
            "INSERT INTO notifications (channel, kind, level, group_key, group_id, status, attempts, created_at) "
            f"SELECT 'log', 'firing', 'L1', 'k', 'g', 'pending', 0, now() FROM generate_series(1, {ALERTS})"))
        conn.execute(sa.text(
            "INSERT INTO notification_items (notification_id, alert_id, channel, kind, level, repeat_no) "
            "SELECT id, id, 'log', 'firing', 'L1', 0 FROM notifications"))
        analysed = conn.execute(sa.text(
            "SELECT count(*) FROM pg_stats WHERE tablename IN ('alerts', 'notification_items')")).scalar_one()
    assert analysed == 0
    yield engine
    engine.dispose()


def plan(engine, sql: str, params: dict) -> str:
    with engine.connect() as conn:
        return "\n".join(row[0] for row in conn.execute(sa.text("EXPLAIN " + sql), params))


def test_the_state_lookup_goes_by_the_open_fingerprint_index(unanalysed):
    fingerprints = [f"{n:032x}" for n in range(100)]
    driver = unanalysed.raw_connection()
    try:
        cursor = driver.cursor()
        cursor.execute("EXPLAIN " + _STATE_POSTGRESQL, {"fps": fingerprints})
        used = "\n".join(row[0] for row in cursor.fetchall())
    finally:
        driver.close()
    assert "uq_alerts_open_fingerprint" in used and "ix_alerts_status_level" not in used, used
    assert "Seq Scan on alerts" not in used, used
    old = plan(unanalysed, "SELECT id FROM alerts WHERE fingerprint = ANY(CAST(:fps AS text[])) "
                           "AND status = 'firing'", {"fps": fingerprints})
    assert "uq_alerts_open_fingerprint" not in old, old  # the control: the trap is set


def test_the_dispatchers_load_goes_by_index_lookups(unanalysed):
    ids = list(range(1, 129))
    used = plan(unanalysed, str(_load_alerts_postgresql()), {"ids": ids})
    assert "ix_notification_items_notification_id" in used and "pk_alerts" in used, used
    assert "Seq Scan" not in used, used
    old = plan(unanalysed, "SELECT i.notification_id, a.* FROM notification_items i JOIN alerts a ON a.id = i.alert_id "
                           f"WHERE i.notification_id IN ({', '.join(map(str, ids))})", {})
    assert "Seq Scan" in old, old  # the control: the trap is set
