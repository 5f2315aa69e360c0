"""The writer's client side, and the write port that uses it (`GroupCommitWrites`).

Each request thread of a gunicorn worker, and the engine's dispatcher, hands its job to the writer process and
waits for the answer, which comes only after the COMMIT of the group transaction that ran it. When no writer
listens (an in-process app, a writer that is restarting or shutting down) the job runs in a transaction here,
exactly as `DirectWrites` would run it: the caller never knows which way it went.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import pickle
import socket
import threading
import weakref
from typing import Any, Callable, Iterator

from sqlalchemy.engine import Connection, Engine

from ..store.db import StorageUnavailable
from ..store.group_writes import GroupWrites
from ..store.write_port import DirectWrites, WriteJob, Writes, job_weight
from .wire import (OK, UNAVAILABLE, InsecureDirectory, check_private, recv_frame,
                   set_kernel_timeouts, socket_path)
from .wire import frame as wire_frame

log = logging.getLogger("receiver.writer")


class _NotRunning:
    def __repr__(self) -> str:
        return "NOT_RUNNING"


NOT_RUNNING: Any = _NotRunning()  # GroupCommitClient.submit: no writer listens; the caller writes directly


class WriterLost(StorageUnavailable):
    """The job reached the writer but no answer came back (it died or stalled): whether it committed is unknown.
    The caller answers 503; Alertmanager's retry is harmless because ingest is idempotent."""


class JobFailed(RuntimeError):
    """The job raised in the writer (not a storage outage): only this job was rolled back."""


# --- client ----------------------------------------------------------------------------------


class GroupCommitClient:
    """Connections of this process to the writer of one database, one per thread: each request thread of a gunicorn
    worker has its own job in flight, so the writer commits the jobs of every thread of every worker together (with
    one shared connection, the threads of a worker took turns and its webhooks never shared a COMMIT)."""

    def __init__(self, path: str, *, reply_timeout_s: float = 25.0):
        self.path = path
        self.reply_timeout_s = reply_timeout_s
        self._local = threading.local()  # .sock, .pid: this thread's connection, and the process that opened it
        self._opened: "weakref.WeakSet[socket.socket]" = weakref.WeakSet()  # every thread's, for close()
        self._opened_lock = threading.Lock()

    def _connect(self) -> socket.socket | None:
        try:
            check_private(os.path.dirname(self.path))
        except FileNotFoundError:
            return None
        except InsecureDirectory as exc:
            log.warning("not using the writer process", extra={"error": str(exc)})
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.EAGAIN):
                return None  # no writer: not started (in-process app), restarting, or shutting down
            raise
        set_kernel_timeouts(sock, self.reply_timeout_s)
        with self._opened_lock:
            self._opened.add(sock)
        return sock

    def _drop(self) -> None:
        sock = getattr(self._local, "sock", None)
        if sock is not None:
            sock.close()
            self._local.sock = None

    def submit(self, job: Any) -> Any:
        """Run `job` in the writer's next group transaction and return its result once committed. Returns
        NOT_RUNNING when no writer listens; raises StorageUnavailable (→ 503) or JobFailed (→ 500)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # after fork: never share the parent's connection
            local.sock, local.pid = None, os.getpid()
        frame = None
        for attempt in (1, 2):
            if local.sock is None:
                local.sock = self._connect()
                if local.sock is None:
                    return NOT_RUNNING
            if frame is None:  # only once a writer listens: without one, the caller writes directly
                frame = wire_frame(job)
            try:
                local.sock.sendall(frame)
                break
            except OSError:
                # A connection to a writer that has since exited: on a Unix socket the send fails at once and
                # nothing was received, so a fresh connection (to its successor, if any) is safe.
                self._drop()
                if attempt == 2:
                    return NOT_RUNNING
        try:
            status, value = recv_frame(local.sock)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            self._drop()
            raise WriterLost(f"no answer from the writer process ({type(exc).__name__}): retry") from None
        if status == OK:
            return value
        if status == UNAVAILABLE:
            raise StorageUnavailable(value)
        raise JobFailed(value)

    def close(self) -> None:
        """Close every thread's connection (their next submit connects again)."""
        with self._opened_lock:
            opened = list(self._opened)
            self._opened.clear()
        for sock in opened:
            sock.close()




class GroupCommitWrites(Writes):
    """The write port with a writer process (group commit): jobs go to it, and it answers after COMMIT; when it is
    not there, or for a job over `direct_above_bytes` (the writer would hold every worker's large body at once),
    they run here through `fallback` (default: a transaction each). `transaction()` is always here (on SQLite under
    the cross-process writer lock)."""

    def __init__(self, db: Engine, path: str, *, direct_above_bytes: int = 4 * 1024 * 1024,
                 direct_above_weight: int | None = None, fallback: Writes | None = None):
        self.db = db
        self.client = GroupCommitClient(path)
        self.direct = fallback if fallback is not None else DirectWrites(db)
        self.direct_above_bytes = direct_above_bytes
        self.direct_above_weight = direct_above_weight
        self.sqlite = db.dialect.name == "sqlite"

    def submit(self, job: WriteJob) -> Any:
        if (getattr(job, "size_bytes", 0) <= self.direct_above_bytes
                and (self.direct_above_weight is None or job_weight(job) <= self.direct_above_weight)):
            compact = getattr(job, "for_writer", None)
            result = self.client.submit(compact(sqlite=self.sqlite) if compact is not None else job)
            if result is not NOT_RUNNING:
                return result
        return self.direct.submit(job)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.direct.transaction() as conn:
            yield conn

    def close(self) -> None:
        self.client.close()
        self.direct.close()


_PG_WRITER_MAX_WEIGHT = 17  # alerts + 1 (IngestSnapshot.weight): webhooks of up to 16 alerts go to the writer


def open_writes(db: Engine, *, observe: Callable[[int, int, float], None] | None = None) -> Writes:
    """The write port for `db`, chosen once at start-up: group commit through the writer process of a SQLite file,
    or of this replica on PostgreSQL (serve starts it and names its socket in wire.WRITER_SOCKET_ENV); without
    one, on PostgreSQL, group commit among this process's threads (store/group_writes.py); direct transactions for
    in-memory SQLite. ALERT_RECEIVER_PG_GROUP_COMMIT=0 turns PostgreSQL's in-process group commit off (one
    transaction per job), to measure one against the other (bench/ingest.py keeps the variable). `observe` gets each
    in-process group transaction (metrics.GroupCommitMetrics.observe)."""
    if db.dialect.name == "postgresql":
        local = (DirectWrites(db) if os.environ.get("ALERT_RECEIVER_PG_GROUP_COMMIT") == "0"
                 else GroupWrites(db, observe=observe))
        path = socket_path(db)
        # A webhook of many alerts already writes them with one statement of each kind: handing it to the writer
        # saves little and costs a pickle of every alert each way (bench/ingest.py, 100 alerts per webhook: 9,100
        # alerts/s written here against 6,300 through the writer). Those run in this process's group commit.
        return GroupCommitWrites(db, path, fallback=local, direct_above_weight=_PG_WRITER_MAX_WEIGHT) if path else local
    path = socket_path(db)
    return GroupCommitWrites(db, path) if path else DirectWrites(db)
