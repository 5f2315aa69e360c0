"""WAL checkpoints for the SQLite writer, from a thread of their own.

By default SQLite checkpoints inside the COMMIT that takes the WAL past 1,000 pages: under 1-alert load that was
every fifteenth group transaction of the writer, which then copied some 300 pages into the database and synced it
while every worker's webhook waited for its answer. Here a thread of the writer process checkpoints (PASSIVE: it
never blocks a writer or a reader) a few times a second on a connection of its own, so the copying and syncing
overlap the writer's transactions (sqlite3 releases the GIL while it works), and each hot page (a table's or
an index's last page, rewritten by every transaction) is copied once per pass instead of once per 1,000 pages.

The writer's own connections keep a far larger `wal_autocheckpoint` as a backstop: a WAL is only restarted from its
beginning by a write that follows a checkpoint which copied every frame, and with a writer that never pauses that
moment may not come; past the backstop the writer's COMMIT checkpoints the few frames left, and the WAL restarts.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("receiver.checkpoint")

BACKSTOP_PAGES = 10_000  # the writer's wal_autocheckpoint: a WAL of about 40 MiB at most between restarts


class WalCheckpointer:
    def __init__(self, database: str, *, every_s: float = 0.2, busy_ms: int = 5000):
        self.database = database
        self.every_s = every_s
        self.busy_ms = busy_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self.passes = 0
        self.last: tuple[int, int, int] | None = None  # the latest pass's (busy, frames in the WAL, frames copied)

    def run_once(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, frames in the WAL, how many of them are now in the database)."""
        if self._conn is None:
            self._conn = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout={self.busy_ms}")
        self.last = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.passes += 1
        return self.last

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.run_once()
            except sqlite3.Error as exc:  # locked or I/O trouble: the backstop still checkpoints; try again later
                log.warning("WAL checkpoint failed; retrying", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
