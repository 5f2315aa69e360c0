"""The writer's server loop: group commit, one writer process for every gunicorn worker and the engine.

SQLite has one writer at a time, and with `synchronous=FULL` each COMMIT waits for an fsync. With each worker
committing its own webhook the database did one fsync per webhook and the workers spent most of their time queued
on the writer lock. Here a single writer process (started by `serve` beside gunicorn) receives the prepared jobs
over a Unix socket, runs every job that is waiting in one `write_transaction`, COMMITs once, and only then answers
each with its own result or error: every 2xx still means "committed". The jobs of a batch are first run together
(`handle_many`: one statement of each kind for all of them); if that raises, it is rolled back to its SAVEPOINT
and each job runs under a SAVEPOINT of its own, so a job that fails is rolled back alone and only its request
fails. A storage error (locked, I/O, full disk) fails the whole transaction: every job of it gets "unavailable"
(503 + Retry-After).

On SQLite the writer still takes the cross-process writer lock for each transaction (store/writer_lock.py): the
engine's batches and the workers' interactive writes (`Writes.transaction`) write too. On PostgreSQL the same loop
saves each batch its round trips: one statement of each kind and one COMMIT for every worker's webhooks.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import selectors
import socket
import struct
import time
from typing import Any, Callable

from sqlalchemy.engine import Connection, Engine

from ..store.db import is_unavailable, write_transaction
from ..store.write_port import count_batch
from .wire import FAILED, HEADER, MAX_FRAME, OK, UNAVAILABLE, check_private, frame

log = logging.getLogger("receiver.writer")

_PEERCRED = struct.Struct("3i")


class _BatchFailed(Exception):
    """A batch run together raised for a reason of its own (not the storage): roll it back, run its jobs alone."""


# --- server ------------------------------------------------------------------------------------


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
        check_private(directory)
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
                log.info("writer draining", extra={"workers_connected": len(self._peers)})
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
                log.warning("writer refused a connection from another user", extra={"uid": uid})
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
        while len(buf) >= HEADER.size:
            (size,) = HEADER.unpack_from(buf)
            if size > MAX_FRAME:
                log.error("writer: oversized frame, dropping the connection", extra={"bytes": size})
                self._close(peer)
                return
            if len(buf) < HEADER.size + size:
                break
            data = bytes(memoryview(buf)[HEADER.size:HEADER.size + size])
            del buf[:HEADER.size + size]
            try:
                job = pickle.loads(data)
                weight = max(1, self.weight(job))
            except Exception as exc:  # a bug on one side: this job fails, the writer goes on
                log.exception("writer: unreadable job")
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
                job.reply = (UNAVAILABLE, f"the writer is overloaded (queued {now - job.received:.1f}s); retry")
                self._answer(job)
                continue
            batch.append(job)
            weight += job.weight
        if not batch:
            return
        started = time.perf_counter()
        self._transaction(batch)
        seconds = time.perf_counter() - started
        count_batch(self.stats, self.observe, len(batch), sum(1 for j in batch if j.reply[0] != OK), seconds)
        for job in batch:
            self._answer(job)

    def _transaction(self, batch: list[_Job]) -> None:
        together = self.handle_many is not None and len(batch) > 1
        try:
            if together and self.engine.dialect.name == "postgresql":
                # Two round trips saved per batch: no SAVEPOINT around it. If it fails for a reason of its own
                # the transaction is rolled back, and the jobs run again, each under a SAVEPOINT, below.
                if self._together_or_rollback(batch):
                    return
                together = False
            with write_transaction(self.engine) as conn:
                cursor = conn.connection.driver_connection.cursor()
                try:
                    if together and self._together(conn, cursor, batch):
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
                            log.exception("writer: job failed, rolled back alone")
                            job.reply = (FAILED, f"{type(exc).__name__}: {exc}"[:2000])
                            continue
                        cursor.execute("RELEASE group_commit_job")
                        job.reply = (OK, value)
                finally:
                    cursor.close()
            # Only here, after COMMIT returned, may an OK reach a worker.
        except Exception as exc:
            if is_unavailable(exc):
                log.warning("writer: storage unavailable, transaction rolled back",
                            extra={"error": f"{type(exc).__name__}: {exc}"[:300], "jobs": len(batch)})
                reply = (UNAVAILABLE, "the database is unavailable or locked; retry")
            else:
                log.exception("writer: transaction failed", extra={"jobs": len(batch)})
                reply = (FAILED, f"{type(exc).__name__}: {exc}"[:2000])
            for job in batch:
                job.reply = reply

    def _together_or_rollback(self, batch: list[_Job]) -> bool:
        """Every job of the batch in one call and one transaction; False (rolled back) if that failed for a reason of
        its own. A storage error propagates (the whole batch is unavailable)."""
        try:
            with write_transaction(self.engine) as conn:
                try:
                    values = self.handle_many(conn, [job.job for job in batch])
                except Exception as exc:
                    if is_unavailable(exc):
                        raise
                    raise _BatchFailed(f"{type(exc).__name__}: {exc}"[:300]) from exc
        except _BatchFailed as failed:
            log.info("writer: the batch failed as a whole; each job on its own now",
                     extra={"error": str(failed), "jobs": len(batch)})
            return False
        for job, value in zip(batch, values, strict=True):  # committed: only now may an OK reach a worker
            job.reply = (OK, value)
        return True

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
            log.info("writer: the batch failed as a whole; each job on its own now",
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
        data = frame(job.reply)
        try:
            # An answer is small and its connection has nothing else in flight: one non-blocking send almost always
            # takes it whole. Otherwise wait, but not for ever: a full buffer for 5 s means the worker is stuck.
            try:
                sent = sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            if sent < len(data):
                sock.settimeout(5.0)
                sock.sendall(memoryview(data)[sent:])
                sock.setblocking(False)
        except OSError:
            self._close(job.peer)


