"""insert_returning_ids gives each row's id in the order of the rows, on both backends: the outbox links every
intent to its message by that order, so a mismatch would send alerts in another group's message."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from receiver.store.db import create_db_engine, write_transaction
from receiver.store.models import Notification
from receiver.store.sql import insert_returning_ids

from ..conftest import T0

_messages = Notification.__table__


def _rows(tag: str, n: int) -> list[dict]:
    return [{"channel": f"{tag}-{i}", "kind": "firing", "level": "L2", "group_key": f"{tag}:{i}", "group_id": "",
             "status": "pending", "attempts": 0, "created_at": T0, "next_attempt_at": T0,
             "target": None if i % 3 else f"person:{i}"} for i in range(n)]


def test_each_id_is_its_rows_while_another_session_inserts_too(db_url):
    engine = create_db_engine(db_url)
    stop = threading.Event()

    def other_session():  # takes ids from the same sequence meanwhile (PostgreSQL; SQLite's writers serialise)
        while not stop.is_set():
            with write_transaction(engine) as conn:
                insert_returning_ids(conn, _messages, _rows("other", 3))

    neighbour = threading.Thread(target=other_session, daemon=True)
    neighbour.start()
    try:
        for round_ in range(20):
            rows = _rows(f"r{round_}", 40)
            with write_transaction(engine) as conn:
                ids = insert_returning_ids(conn, _messages, rows)
            with engine.connect() as conn:
                stored = dict(conn.execute(sa.select(_messages.c.id, _messages.c.channel)
                                           .where(_messages.c.id.in_(ids))).all())
            assert [stored[i] for i in ids] == [r["channel"] for r in rows]
    finally:
        stop.set()
        neighbour.join(timeout=10)
        engine.dispose()
