"""Group commit for SQLite: one writer process commits the work of every gunicorn worker, many requests per fsync.

SQLite has one writer at a time, and with `synchronous=FULL` each COMMIT waits for an fsync. Sync gunicorn workers
handle one request each, so with each worker committing its own webhook the database did one fsync per webhook and
the workers spent most of their time queued on the writer lock. Here a single writer process (started by `serve`
beside gunicorn) receives the workers' prepared jobs over a Unix socket, runs every job that is waiting in one
`write_transaction`, COMMITs once, and only then answers each worker with its own result or error: every 2xx still
means "committed". The jobs of a batch are first applied together (`handle_many`: one statement of each kind for all
of them); if that raises, it is rolled back to its SAVEPOINT and each job runs under a SAVEPOINT of its own, so a job
that fails is rolled back alone and only its request fails. A storage error (locked, I/O, full disk) fails the whole
transaction: every job of it gets "unavailable" (503 + Retry-After).

The writer still takes the cross-process writer lock for each transaction (writer_lock.py): the escalation engine and
the workers' housekeeping write too. When no writer is listening (tests that build the app in-process, a writer
that is restarting, PostgreSQL), callers write directly (`submit` returns NOT_RUNNING).

Wire format: an 8-byte big-endian length, then a pickle. Both ends are this program, and the socket lives in a
directory only our user can enter (checked), and the peer's uid is checked on accept: pickle is safe here.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import logging
import os
import pickle
import selectors
import socket
import stat
import struct
import tempfile
import threading
import time
import weakref
from typing import Any, Callable

from sqlalchemy.engine import Connection, Engine

from .db import StorageUnavailable, is_unavailable, write_transaction

log = logging.getLogger("receiver.group_commit")

_HEADER = struct.Struct("!Q")
_MAX_FRAME = 1 << 31  # a 64 MiB body and its parsed snapshot fit many times over
_PEERCRED = struct.Struct("3i")

OK, UNAVAILABLE, FAILED = "ok", "unavailable", "failed"


class _NotRunning:
    def __repr__(self) -> str:
        return "NOT_RUNNING"


NOT_RUNNING: Any = _NotRunning()  # submit(): no writer listens; the caller writes directly


class WriterLost(StorageUnavailable):
    """The job reached the writer but no answer came back (it died or stalled): whether it committed is unknown.
    The caller answers 503; Alertmanager's retry is harmless because ingest is idempotent."""


class JobFailed(RuntimeError):
    """The job raised in the writer (not a storage outage): only this job was rolled back."""


class InsecureDirectory(RuntimeError):
    pass


# --- where the socket lives ----------------------------------------------------------------------------------------


def socket_dir() -> str:
    """A directory only this user can enter: $XDG_RUNTIME_DIR/alert-receiver or <tmp>/alert-receiver-<uid>."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "alert-receiver")
    return os.path.join(tempfile.gettempdir(), f"alert-receiver-{os.getuid()}")


def _check_private(path: str) -> None:
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise InsecureDirectory(f"{path} must be a directory of uid {os.getuid()} with mode 0700: not using it")


def socket_path(engine_or_database: Engine | str) -> str | None:
    """The writer's socket for a SQLite database file (None for other databases and in-memory SQLite). Derived
    from the database's absolute path, so the workers, the writer and the tests find it without configuration."""
    if isinstance(engine_or_database, str):
        database = engine_or_database
    else:
        if engine_or_database.dialect.name != "sqlite":
            return None
        database = engine_or_database.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    digest = hashlib.sha256(os.path.realpath(database).encode()).hexdigest()[:24]
    return os.path.join(socket_dir(), f"writer-{digest}.sock")


# --- framing -------------------------------------------------------------------------------------------------------


def _frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


def _recv_frame(sock: socket.socket) -> Any:
    """One answer: usually a single recv brings its header and its body (one job in flight per connection, so
    nothing follows it)."""
    buf = bytearray()
    need = _HEADER.size
    while len(buf) < need:
        chunk = sock.recv(max(need - len(buf), 1 << 16))
        if not chunk:
            raise ConnectionResetError("writer closed the connection")
        buf += chunk
        if need == _HEADER.size and len(buf) >= _HEADER.size:
            need += _HEADER.unpack_from(buf)[0]
    return pickle.loads(memoryview(buf)[_HEADER.size:need])


def _set_kernel_timeouts(sock: socket.socket, seconds: float) -> None:
    """A blocking socket whose send and recv give up after `seconds` (EAGAIN). A Python timeout would do the same
    with a poll() before every call, and each of those is one more GIL handoff in a threaded worker."""
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


# --- client: the gunicorn workers ----------------------------------------------------------------------------------


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
            _check_private(os.path.dirname(self.path))
        except FileNotFoundError:
            return None
        except InsecureDirectory as exc:
            log.warning("not using the SQLite writer", extra={"error": str(exc)})
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.EAGAIN):
                return None  # no writer: not started (in-process app), restarting, or shutting down
            raise
        _set_kernel_timeouts(sock, self.reply_timeout_s)
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
                frame = _frame(job)
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
            status, value = _recv_frame(local.sock)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            self._drop()
            raise WriterLost(f"no answer from the SQLite writer ({type(exc).__name__}): retry") from None
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


# --- server: the writer process ------------------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class _Peer:
    sock: socket.socket
    buf: bytearray = dataclasses.field(default_factory=bytearray)
    waiting: int = 0  # jobs received and not yet answered


@dataclasses.dataclass(eq=False)
class _Job:
    peer: _Peer
    job: Any
    received: float
    weight: int
    reply: tuple[str, Any] | None = None


class GroupCommitServer:
    """The writer's loop: read every job that is waiting, run them in one transaction, answer after COMMIT.

    No artificial delay: a batch is whatever arrived while the previous one committed, so an idle writer answers a
    lone job at once and a busy one amortises each fsync over every worker's request.
    """

    def __init__(self, engine: Engine, handle: Callable[[Connection, Any], Any], path: str, *,
                 handle_many: Callable[[Connection, list], list] | None = None,
                 max_batch: int = 64, max_weight: int = 20_000, queue_timeout_s: float = 5.0,
                 weight: Callable[[Any], int] = lambda job: 1, observe: Callable[[int, int, float], None] | None = None):
        self.engine = engine
        self.handle = handle
        # Optional: all the jobs of a batch at once (fewer statements); if it raises, each job runs on its own.
        self.handle_many = handle_many
        self.path = path
        self.max_batch = max_batch
        self.max_weight = max_weight  # e.g. alerts: one transaction is not allowed to grow without bound
        self.queue_timeout_s = queue_timeout_s
        self.weight = weight
        self.observe = observe  # (jobs, failed, seconds) per transaction, for metrics
        self._sel = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._inode: int | None = None
        self._peers: set[_Peer] = set()
        self._queue: list[_Job] = []
        self._recv_buffer = bytearray(1 << 20)
        self._recv_view = memoryview(self._recv_buffer)
        self.stats = {"transactions": 0, "jobs": 0, "failed": 0, "seconds": 0.0}

    # listening

    def bind(self) -> bool:
        """Listen on `path`. False when another live writer already serves this database."""
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        _check_private(directory)
        if os.path.exists(self.path):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.path)
                return False  # alive
            except OSError:
                os.unlink(self.path)  # stale: its writer died without cleaning up
            finally:
                probe.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(self.path)
        finally:
            os.umask(old_umask)
        listener.listen(128)
        listener.setblocking(False)
        self._listener = listener
        self._inode = os.stat(self.path).st_ino
        self._sel.register(listener, selectors.EVENT_READ, None)
        return True

    def stop_listening(self) -> None:
        """New connections are refused (their callers write directly); connected workers are still served."""
        if self._listener is None:
            return
        self._sel.unregister(self._listener)
        self._listener.close()
        self._listener = None
        try:
            if os.stat(self.path).st_ino == self._inode:  # not a successor's socket
                os.unlink(self.path)
        except FileNotFoundError:
            pass

    # the loop

    def serve(self, *, stopping: Callable[[], bool], drain_s: float = 35.0, poll_s: float = 0.5,
              idle_grace_s: float = 1.0) -> None:
        """Serve until `stopping()`; then stop listening and keep serving the connected workers that have a job in
        flight (gunicorn lets their requests finish) until none is left or `drain_s` has passed. A worker that is
        idle for `idle_grace_s` after that is disconnected: its next request finds no writer and writes directly."""
        draining_since = None
        while True:
            now = time.monotonic()
            if draining_since is None and stopping():
                self.stop_listening()
                draining_since = now
                log.info("SQLite writer draining", extra={"workers_connected": len(self._peers)})
            if draining_since is not None:
                if now - draining_since > idle_grace_s:
                    for peer in [p for p in self._peers if not p.waiting and not p.buf]:
                        self._close(peer)
                if (not self._peers and not self._queue) or now - draining_since > drain_s:
                    break
            self.poll(0 if self._queue else (poll_s if draining_since is None else min(poll_s, 0.1)))
            if self._queue:
                self.run_batch()
        for peer in list(self._peers):
            self._close(peer)
        self._sel.close()

    def poll(self, timeout: float) -> None:
        """Accept connections and read every complete job that has arrived."""
        for key, _ in self._sel.select(timeout):
            if key.data is None:
                self._accept()
            else:
                self._read(key.data)

    def _accept(self) -> None:
        while self._listener is not None:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            _pid, uid, _gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
            if uid != os.getuid():
                log.warning("SQLite writer refused a connection from another user", extra={"uid": uid})
                sock.close()
                continue
            sock.setblocking(False)  # reads never wait; answers are sent with a timeout (_answer)
            peer = _Peer(sock)
            self._peers.add(peer)
            self._sel.register(sock, selectors.EVENT_READ, peer)

    def _read(self, peer: _Peer) -> None:
        now = time.monotonic()
        while True:
            try:
                # Into one buffer kept for the writer's life: a fresh 1 MiB bytes per recv cost an mmap, an mremap
                # and a munmap per job.
                n = peer.sock.recv_into(self._recv_buffer)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                n = 0
            if not n:
                # The worker exited (or gave up on its answer). A job it sent is still run: idempotent, harmless.
                self._close(peer)
                break
            peer.buf += self._recv_view[:n]
            if n < len(self._recv_buffer):
                break  # all there was: the next poll says when more arrives (no extra recv for EAGAIN)
        buf = peer.buf
        while len(buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf)
            if size > _MAX_FRAME:
                log.error("SQLite writer: oversized frame, dropping the connection", extra={"bytes": size})
                self._close(peer)
                return
            if len(buf) < _HEADER.size + size:
                break
            data = bytes(memoryview(buf)[_HEADER.size:_HEADER.size + size])
            del buf[:_HEADER.size + size]
            try:
                job = pickle.loads(data)
                weight = max(1, self.weight(job))
            except Exception as exc:  # a bug on one side: this job fails, the writer goes on
                log.exception("SQLite writer: unreadable job")
                self._answer(_Job(peer, None, now, 1, (FAILED, f"unreadable job: {type(exc).__name__}: {exc}"[:2000])))
                continue
            self._queue.append(_Job(peer, job, now, weight))
            peer.waiting += 1

    def _close(self, peer: _Peer) -> None:
        if peer in self._peers:
            self._peers.discard(peer)
            self._sel.unregister(peer.sock)
            peer.sock.close()

    def run_batch(self) -> None:
        """One transaction for the jobs at the head of the queue (bounded in count and weight), then the answers."""
        now = time.monotonic()
        batch: list[_Job] = []
        weight = 0
        while self._queue and len(batch) < self.max_batch and (not batch or weight + self._queue[0].weight <= self.max_weight):
            job = self._queue.pop(0)
            if now - job.received > self.queue_timeout_s:
                # Waited longer than a worker may wait for the lock: never started, so a 503 is exact.
                job.reply = (UNAVAILABLE, f"the SQLite writer is overloaded (queued {now - job.received:.1f}s); retry")
                self._answer(job)
                continue
            batch.append(job)
            weight += job.weight
        if not batch:
            return
        started = time.perf_counter()
        self._transaction(batch)
        seconds = time.perf_counter() - started
        failed = sum(1 for j in batch if j.reply[0] != OK)
        st = self.stats
        st["transactions"] += 1
        st["jobs"] += len(batch)
        st["failed"] += failed
        st["seconds"] += seconds
        if self.observe is not None:
            self.observe(len(batch), failed, seconds)
        for job in batch:
            self._answer(job)

    def _transaction(self, batch: list[_Job]) -> None:
        try:
            with write_transaction(self.engine) as conn:
                cursor = conn.connection.driver_connection.cursor()
                try:
                    if self.handle_many is not None and len(batch) > 1 and self._together(conn, cursor, batch):
                        return
                    for job in batch:
                        cursor.execute("SAVEPOINT group_commit_job")
                        try:
                            value = self.handle(conn, job.job)
                        except Exception as exc:
                            if is_unavailable(exc):
                                raise  # the storage, not this job: the whole transaction goes
                            cursor.execute("ROLLBACK TO group_commit_job")
                            cursor.execute("RELEASE group_commit_job")
                            log.exception("SQLite writer: job failed, rolled back alone")
                            job.reply = (FAILED, f"{type(exc).__name__}: {exc}"[:2000])
                            continue
                        cursor.execute("RELEASE group_commit_job")
                        job.reply = (OK, value)
                finally:
                    cursor.close()
            # Only here, after COMMIT returned, may an OK reach a worker.
        except Exception as exc:
            if is_unavailable(exc):
                log.warning("SQLite writer: storage unavailable, transaction rolled back",
                            extra={"error": f"{type(exc).__name__}: {exc}"[:300], "jobs": len(batch)})
                reply = (UNAVAILABLE, "the database is unavailable or locked; retry")
            else:
                log.exception("SQLite writer: transaction failed", extra={"jobs": len(batch)})
                reply = (FAILED, f"{type(exc).__name__}: {exc}"[:2000])
            for job in batch:
                job.reply = reply

    def _together(self, conn: Connection, cursor, batch: list[_Job]) -> bool:
        """Every job of the batch in one call; False (nothing written) if that failed for a reason of its own."""
        cursor.execute("SAVEPOINT group_commit_batch")
        try:
            values = self.handle_many(conn, [job.job for job in batch])
        except Exception as exc:
            if is_unavailable(exc):
                raise
            cursor.execute("ROLLBACK TO group_commit_batch")
            cursor.execute("RELEASE group_commit_batch")
            log.info("SQLite writer: the batch failed as a whole; each job on its own now",
                     extra={"error": f"{type(exc).__name__}: {exc}"[:300], "jobs": len(batch)})
            return False
        cursor.execute("RELEASE group_commit_batch")
        for job, value in zip(batch, values, strict=True):
            job.reply = (OK, value)
        return True

    def _answer(self, job: _Job) -> None:
        if job.job is not None:
            job.peer.waiting -= 1
        if job.peer not in self._peers:
            return
        sock = job.peer.sock
        frame = _frame(job.reply)
        try:
            # An answer is small and its connection has nothing else in flight: one non-blocking send almost always
            # takes it whole. Otherwise wait, but not for ever: a full buffer for 5 s means the worker is stuck.
            try:
                sent = sock.send(frame)
            except (BlockingIOError, InterruptedError):
                sent = 0
            if sent < len(frame):
                sock.settimeout(5.0)
                sock.sendall(memoryview(frame)[sent:])
                sock.setblocking(False)
        except OSError:
            self._close(job.peer)


_CLIENTS: "weakref.WeakKeyDictionary[Engine, GroupCommitClient | None]" = weakref.WeakKeyDictionary()


def client_for(engine: Engine) -> GroupCommitClient | None:
    """This process's client of the SQLite writer of `engine`'s database; None for databases that have none
    (PostgreSQL, in-memory SQLite)."""
    try:
        return _CLIENTS[engine]
    except KeyError:
        path = socket_path(engine)
        client = _CLIENTS[engine] = GroupCommitClient(path) if path else None
        return client


def submit(engine: Engine, job: Any) -> Any:
    """Hand `job` to the SQLite writer of `engine`'s database; NOT_RUNNING when there is none (PostgreSQL, in-memory
    SQLite, or no writer listening), in which case the caller writes directly."""
    client = client_for(engine)
    return NOT_RUNNING if client is None else client.submit(job)
