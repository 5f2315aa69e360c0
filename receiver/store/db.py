"""Database engines per dialect, write transactions, and which errors mean "storage unavailable".

SQLite: WAL, a busy timeout equal to the lock deadline, and `BEGIN IMMEDIATE` for write transactions (a deferred
read transaction that later writes fails with SQLITE_BUSY_SNAPSHOT in WAL mode, whatever the busy timeout).
PostgreSQL: psycopg 3, lock and connect timeouts so that a stuck database becomes a quick 503, not a hang.
Reads may carry a time budget that the database enforces (SQLite's progress handler, PostgreSQL's
statement_timeout): past it the query stops and QueryTimeout says so. SQLite's REGEXP is RE2, as matchers are.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import time
import weakref
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError, TimeoutError as PoolTimeoutError

from ..matchers import compile_re2
from .writer_lock import SqliteWriterLock, WriterLockTimeout

_WRITE = "alert_receiver_write"
# The cross-process writer queue of each SQLite engine (see writer_lock.py).
_WRITER_LOCKS: "weakref.WeakKeyDictionary[Engine, SqliteWriterLock]" = weakref.WeakKeyDictionary()


class StorageUnavailable(Exception):
    """A write that a retry can fix, reported by another process (the SQLite writer): answered with 503."""


# How often (in SQLite VM instructions) the progress handler looks at the clock: about every few hundred rows.
_PROGRESS_EVERY = 5000
_PG_QUERY_CANCELED = "57014"  # statement_timeout
# psycopg prepares a statement automatically after this many executions on a connection: never, in practice.
_ONLY_WHEN_ASKED = 2**62


def _regexp(pattern: str | None, value: str | None) -> int | None:
    """SQLite's `value REGEXP pattern` (SQLAlchemy's regexp_match), in RE2: linear time, whatever the pattern."""
    if pattern is None or value is None:
        return None
    return 1 if compile_re2(pattern).search(value) is not None else 0


def normalise_url(url: str) -> str:
    """Accept the usual spellings of a PostgreSQL URL and use psycopg 3 for all of them."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def create_db_engine(
    url: str,
    *,
    lock_timeout: dt.timedelta = dt.timedelta(seconds=5),
    pool_size: int = 5,
    sqlite_synchronous: str = "FULL",
    sqlite_temp_store: str | None = None,
    pre_ping: bool = True,
    prepared_statements: bool = True,
) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    timeout_s = max(lock_timeout.total_seconds(), 0.001)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"timeout": timeout_s, "check_same_thread": False})
        database = parsed.database
        lock = None
        if database and database != ":memory:" and not database.startswith("file:"):
            lock = SqliteWriterLock(os.path.abspath(database) + ".writer-lock", timeout_s)
        _configure_sqlite(engine, int(timeout_s * 1000), sqlite_synchronous, lock, sqlite_temp_store)
        return engine
    if parsed.get_backend_name() == "postgresql":
        ms = int(timeout_s * 1000)
        return sa.create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=timeout_s,
            # A round trip before every transaction. The writer process turns it off: it runs one transaction after
            # another on the same connection, and one that died with the server fails its batch as unavailable
            # (503, retried) and is replaced by the pool.
            pool_pre_ping=pre_ping,
            connect_args={
                "connect_timeout": max(1, int(timeout_s)),
                # Server-side prepared statements only where the code asks (execute(prepare=True): the bulk
                # INSERTs, whose plan is the same at any table size), never automatically: a generic plan made
                # while `alerts` was small (a new database) kept scanning it sequentially as it grew (measured:
                # 14 ms per 100-fingerprint lookup). None turns even those off (database.prepared_statements).
                "prepare_threshold": _ONLY_WHEN_ASKED if prepared_statements else None,
                # lock_timeout: a lock we cannot get in time is a 503, not a hang. statement_timeout bounds the rest.
                "options": f"-c lock_timeout={ms} -c statement_timeout={max(ms * 6, 30000)}",
            },
        )
    raise ValueError(f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: use sqlite:/// or postgresql://")


def _configure_sqlite(engine: Engine, busy_ms: int, synchronous: str, lock: SqliteWriterLock | None,
                      temp_store: str | None) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # We issue BEGIN ourselves (below); pysqlite's implicit transactions would defeat BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.execute("PRAGMA foreign_keys=ON")
        if temp_store is not None:
            cur.execute(f"PRAGMA temp_store={temp_store}")
        cur.close()
        # After SQLAlchemy's own `regexp` (Python's re, which backtracks): this one replaces it.
        dbapi_conn.create_function("regexp", 2, _regexp, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection):
        if not conn.get_execution_options().get(_WRITE):
            conn.exec_driver_sql("BEGIN")
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    if lock is not None:
        _WRITER_LOCKS[engine] = lock


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: takes SQLite's write lock up front (queued behind the other processes'
    writers on a file lock, held until after COMMIT); commits on success."""
    lock = _WRITER_LOCKS.get(engine)
    if lock is not None:
        try:
            lock.acquire()
        except WriterLockTimeout as exc:
            raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError(f"database is locked: {exc}")) from None
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn
    finally:
        if lock is not None:
            lock.release()


@contextlib.contextmanager
def read_transaction(engine: Engine, *, budget: float | None = None) -> Iterator[Connection]:
    """A read. With a `budget` (seconds) the database stops any of its statements that runs past it (from the
    start of the transaction on SQLite, per statement on PostgreSQL) and QueryTimeout is raised."""
    with engine.connect() as conn:
        guard = StatementBudget(conn, budget) if budget is not None else None
        try:
            with conn.begin():
                if guard is not None:
                    guard.begin()
                yield conn
        except DBAPIError as exc:
            if guard is not None and is_query_timeout(exc):
                raise QueryTimeout(budget) from exc
            raise
        finally:
            if guard is not None:
                guard.close()


class StatementBudget:
    """How long the database may work for one connection before it stops the statement: SQLite's progress
    handler against a deadline (restart() moves it, e.g. before each batch of a stream), PostgreSQL's
    statement_timeout for each statement of the transaction (begin() sets it, inside the transaction)."""

    def __init__(self, conn: Connection, seconds: float):
        self.conn, self.seconds = conn, seconds
        self.deadline = time.monotonic() + seconds
        self._sqlite = conn.dialect.name == "sqlite"
        if self._sqlite:
            conn.connection.driver_connection.set_progress_handler(self._past, _PROGRESS_EVERY)

    def _past(self) -> bool:
        return time.monotonic() > self.deadline

    def begin(self) -> None:
        if not self._sqlite:
            self.conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(self.seconds * 1000))}")

    def restart(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def close(self) -> None:
        if self._sqlite and not self.conn.closed:
            self.conn.connection.driver_connection.set_progress_handler(None, _PROGRESS_EVERY)


class QueryTimeout(Exception):
    """A read ran past its budget and the database stopped it."""

    def __init__(self, budget: float):
        super().__init__(f"the query ran past its budget of {budget:g} s")
        self.budget = budget


def is_query_timeout(exc: DBAPIError) -> bool:
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == _PG_QUERY_CANCELED:
        return True
    return isinstance(orig, sqlite3.OperationalError) and str(orig) == "interrupted"


# PostgreSQL SQLSTATEs that a retry can fix: connection problems, lock and statement timeouts, shutdown, overload.
_RETRYABLE_PG_CLASSES = ("08", "53", "57", "58")
_RETRYABLE_PG_STATES = {"55P03", "40001", "40P01"}


def is_unavailable(exc: BaseException) -> bool:
    """True when a database error means "try again later" (→ 503), not a bug in us or in the input."""
    if isinstance(exc, (PoolTimeoutError, StorageUnavailable)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        sqlstate = getattr(orig, "sqlstate", None)
        if sqlstate:
            return sqlstate in _RETRYABLE_PG_STATES or sqlstate[:2] in _RETRYABLE_PG_CLASSES
        if isinstance(exc, OperationalError):
            # SQLite: "database is locked", "disk I/O error", "unable to open database file", read-only, full disk.
            return True
    return False


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
