"""The SQLite writer's WAL checkpoints run on a thread of their own (store/checkpoint.py)."""

from __future__ import annotations

import sqlite3

from receiver.store.checkpoint import WalCheckpointer

from ..support.process import wait_until


def wal_database(tmp_path) -> tuple[str, sqlite3.Connection]:
    path = str(tmp_path / "wal.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # as if the writer's backstop were far away: only we checkpoint
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    for i in range(50):
        conn.execute("INSERT INTO t (body) VALUES (?)", ("x" * 3000,))
    return path, conn


def rows_in_database_file(path: str) -> int:
    """The rows in the database file itself, the WAL ignored: what checkpoints have copied."""
    readonly = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        return readonly.execute("SELECT count(*) FROM t").fetchone()[0]
    finally:
        readonly.close()


def test_a_pass_copies_every_frame_the_writer_committed(tmp_path):
    path, writer = wal_database(tmp_path)
    checkpointer = WalCheckpointer(path)
    try:
        busy, frames, copied = checkpointer.run_once()
        assert busy == 0 and frames > 50 and copied == frames
        assert rows_in_database_file(path) == 50
    finally:
        checkpointer.stop()
        writer.close()


def test_the_thread_checkpoints_while_the_writer_commits_and_stops_when_told(tmp_path):
    path, writer = wal_database(tmp_path)
    checkpointer = WalCheckpointer(path, every_s=0.02)
    checkpointer.start()
    try:
        wait_until(lambda: rows_in_database_file(path) == 50, timeout=10, what="a checkpoint pass")
        # A write after a complete checkpoint starts the WAL again from its beginning; the thread goes on copying.
        writer.execute("INSERT INTO t (body) VALUES ('after the first pass')")
        wait_until(lambda: rows_in_database_file(path) == 51, timeout=10, what="the new frames copied")
    finally:
        checkpointer.stop()
        writer.close()
    assert not checkpointer._thread.is_alive()
