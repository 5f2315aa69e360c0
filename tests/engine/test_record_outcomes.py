"""store.outbox.record: one UPDATE from the batch's values writes each outcome's columns exactly, and skips a
message whose lease another engine has taken since (that engine records its own outcome)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.domain import NotificationStatus
from receiver.store import outbox as store
from receiver.store.db import write_transaction

from .harness import Ladder

LEASE = dt.timedelta(minutes=2)


@pytest.fixture
def lad(make_config, clock):
    config = make_config(channels={"chat": {"type": "log"}},
                         routes=[{"levels": {"L3": ["chat"], "L2": ["chat"], "L1": ["chat"]}}])
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    ladder = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
    yield ladder
    ladder.close()
    app.extensions["alert_receiver"].db.dispose()


def _rows(db, ids):
    with db.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT id, status, attempts, next_attempt_at, last_attempt_at, last_duration_ms, sent_at, last_error, "
            "claimed_by, claimed_until FROM notifications WHERE id IN (" + ", ".join(map(str, ids)) + ") ORDER BY id"))
        return {row.id: row._mapping for row in rows}


def _ts(value):
    """A timestamp as read back (SQLite: naive text → UTC datetime) for comparison."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.timezone.utc) if value is not None and value.tzinfo is None else value


def test_each_outcome_is_written_and_a_lost_lease_is_skipped(lad, clock):
    for fixture in ("g_routing_critical", "b_group_5_firing", "a_single_firing"):
        lad.post(fixture)
    now = clock.now()
    with write_transaction(lad.db) as conn:
        claimed = store.claim_due(conn, now=now, worker="engine-a", lease=LEASE, limit=10)
    assert len(claimed) == 3
    sent, failed, lost = (c.id for c in claimed)
    before = _rows(lad.db, [sent, failed, lost])
    # The third message's lease ran out and engine-b claimed it meanwhile.
    with write_transaction(lad.db) as conn:
        conn.execute(sa.text("UPDATE notifications SET claimed_by = 'engine-b' WHERE id = :i"), {"i": lost})

    at = now + dt.timedelta(seconds=3)
    retry_at = now + dt.timedelta(seconds=30)
    outcomes = [
        store.Outcome(sent, NotificationStatus.SENT.value, True, at, duration_ms=12),
        store.Outcome(failed, NotificationStatus.FAILED.value, True, at, next_attempt_at=retry_at,
                      error="HTTP 502 from chat", duration_ms=40),
        store.Outcome(lost, NotificationStatus.SENT.value, True, at, duration_ms=5),
    ]
    with write_transaction(lad.db) as conn:
        kept = store.record(conn, outcomes, worker="engine-a")
    assert kept == {sent, failed}

    after = _rows(lad.db, [sent, failed, lost])
    s, f, x = after[sent], after[failed], after[lost]
    assert (s["status"], s["attempts"], s["last_duration_ms"], s["last_error"]) == ("sent", 1, 12, None)
    assert _ts(s["sent_at"]) == at and _ts(s["last_attempt_at"]) == at
    assert s["claimed_by"] is None and s["claimed_until"] is None
    assert (f["status"], f["attempts"], f["last_duration_ms"], f["last_error"]) == ("failed", 1, 40, "HTTP 502 from chat")
    assert _ts(f["next_attempt_at"]) == retry_at and f["sent_at"] is None and f["claimed_by"] is None
    # Untouched: still engine-b's, as it was.
    assert x["claimed_by"] == "engine-b" and x["status"] == before[lost]["status"] and x["attempts"] == 0


def test_a_deferred_outcome_counts_no_attempt(lad, clock):
    lad.post("g_routing_critical")
    now = clock.now()
    with write_transaction(lad.db) as conn:
        [c] = store.claim_due(conn, now=now, worker="engine-a", lease=LEASE, limit=10)
    later = now + dt.timedelta(seconds=20)
    with write_transaction(lad.db) as conn:
        assert store.record(conn, [store.Outcome(c.id, NotificationStatus.PENDING.value, False, now,
                                                 next_attempt_at=later)], worker="engine-a") == {c.id}
    row = _rows(lad.db, [c.id])[c.id]
    assert (row["status"], row["attempts"], row["last_attempt_at"], row["sent_at"]) == ("pending", 0, None, None)
    assert _ts(row["next_attempt_at"]) == later and row["claimed_by"] is None
