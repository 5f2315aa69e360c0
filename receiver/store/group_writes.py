"""Group commit inside one process (PostgreSQL): the jobs that the request threads of a worker submit at the same
time share one transaction and one COMMIT.

On SQLite a writer process does this for every worker (receiver/writer). On PostgreSQL many processes (and
replicas) write at once, so each process groups its own threads' jobs: `submit` queues the job; the first thread
that finds no batch running becomes the leader, takes every job that is waiting (bounded in count and weight), runs
them with `run_jobs` (one `run_many` per kind that batches: one statement of each kind for all of them) in ONE write
transaction, COMMITs, and only then hands each submitter its own result or exception: every 2xx still means
"committed", and `synchronous_commit` is untouched. No artificial delay: a lone job runs at once, in a transaction of
its own, exactly as `DirectWrites` runs it; a batch is whatever arrived while the previous one committed. When the
leader's own job is done it hands the lead to the oldest thread still waiting, so no request serves others for long.

Failures. A batch that raises for a reason of its own (a bug, a conflict with another writer) is rolled back and run
again with each job under a SAVEPOINT of its own: only the failing job's submitter gets its exception. A storage
error (db.is_unavailable: connection lost, lock timeout, shutdown) fails every job of the batch as unavailable (the
web answers 503 + Retry-After); a deadlock or serialization failure against another process's batch is retried once
first, since nothing of the batch was committed. Every wait is bounded: a job not started within `queue_timeout_s`
is withdrawn (never run: a 503 is exact), and a submitter whose batch has not answered within `reply_timeout_s`
gives up with StorageUnavailable (whether it committed is unknown; ingest is idempotent, the retry is harmless).

`transaction()` is a plain write transaction in the caller's thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Callable, Iterator

from sqlalchemy.engine import Connection, Engine

from .db import StorageUnavailable, is_unavailable
from .write_port import DirectWrites, WriteJob, Writes, count_batch, job_weight, run_jobs

log = logging.getLogger("receiver.store.group_writes")

_RETRY_STATES = {"40P01", "40001"}  # deadlock, serialization failure: the other transaction won, ours can retry


class BatchUnavailable(StorageUnavailable):
    """The storage failed the transaction that carried this job (and others): nothing of it was committed."""


class _Pending:
    __slots__ = ("job", "weight", "queued", "event", "taken", "promoted", "done", "value", "error")

    def __init__(self, job: WriteJob):
        self.job = job
        self.weight = job_weight(job)
        self.queued = time.monotonic()
        self.event = threading.Event()  # set when done, or when this thread is handed the lead
        self.taken = False  # in a batch: running or run
        self.promoted = False
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None


class GroupWrites(Writes):
    """The write port for PostgreSQL: the jobs of this process's threads committed together (see the module)."""

    def __init__(self, db: Engine, *, max_batch: int = 64, max_weight: int = 20_000, queue_timeout_s: float = 5.0,
                 reply_timeout_s: float = 25.0, drain_s: float = 10.0,
                 observe: Callable[[int, int, float], None] | None = None):
        self.db = db
        self.direct = DirectWrites(db)
        self.max_batch = max_batch
        self.max_weight = max_weight  # e.g. alerts: one transaction does not grow without bound
        self.queue_timeout_s = queue_timeout_s
        self.reply_timeout_s = reply_timeout_s
        self.drain_s = drain_s
        self.observe = observe  # (jobs, failed, seconds) per transaction, for metrics
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[_Pending] = []
        self._leading = False
        self._closed = False
        self._local = threading.local()  # .in_batch: this thread is running a batch's jobs
        self.stats = {"transactions": 0, "jobs": 0, "failed": 0, "retried": 0, "seconds": 0.0}

    # the port

    def submit(self, job: WriteJob) -> Any:
        if getattr(self._local, "in_batch", False):
            raise RuntimeError("a write job submitted another job: it would wait for its own batch")
        pending = _Pending(job)
        with self._cond:
            if self._closed:
                lead = None
            else:
                self._queue.append(pending)
                lead = not self._leading
                self._leading = True
        if lead is None:  # closed: a straggler (a request still in flight) writes on its own
            return self.direct.submit(job)
        if lead or not self._wait(pending):  # not _wait: this thread was handed the lead
            self._lead(pending)
        if pending.error is not None:
            raise pending.error
        return pending.value

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.direct.transaction() as conn:
            yield conn

    def close(self) -> None:
        """Let the jobs already queued run (up to `drain_s`); those still not started then fail as unavailable.
        Later submits write directly, one transaction each."""
        with self._cond:
            self._closed = True
            self._cond.wait_for(lambda: not self._queue and not self._leading, timeout=self.drain_s)
            left, self._queue = self._queue, []
        for pending in left:
            self._finish(pending, error=StorageUnavailable("the write port closed before this job could run; retry"))

    # waiting

    def _wait(self, pending: _Pending) -> bool:
        """Wait for the job's answer (True) or for the lead (False); raise StorageUnavailable past a timeout."""
        deadline = pending.queued + self.reply_timeout_s
        while True:
            taken = pending.taken
            limit = deadline if taken else min(deadline, pending.queued + self.queue_timeout_s)
            pending.event.wait(max(0.0, limit - time.monotonic()))
            with self._cond:
                if pending.promoted:
                    pending.promoted = False
                    if not pending.done:
                        pending.event.clear()
                        return False
                    self._hand_off()  # failed by close() meanwhile: the lead goes on to the next
                if pending.done:
                    return True
                now = time.monotonic()
                if not pending.taken and now >= pending.queued + self.queue_timeout_s:
                    self._queue.remove(pending)  # never started: nothing was written
                    raise StorageUnavailable(f"the database writes of this process are overloaded "
                                             f"(queued {now - pending.queued:.1f}s); retry")
                if now >= deadline:
                    raise StorageUnavailable(f"no answer from the group commit within {self.reply_timeout_s:g}s: "
                                             "whether the write committed is unknown; retry")

    # leading

    def _lead(self, own: _Pending) -> None:
        """Run batches until this thread's own job is done, then hand the lead to the oldest waiting thread."""
        try:
            while not own.done:
                batch = self._take()
                if not batch:  # own was withdrawn by close()
                    break
                self._run(batch)
        finally:
            with self._cond:
                self._hand_off()

    def _hand_off(self) -> None:
        """(Under the lock.) The lead to the oldest thread still waiting, or nobody leads."""
        if self._queue:
            nxt = self._queue[0]
            nxt.promoted = True
            nxt.event.set()
        else:
            self._leading = False
            self._cond.notify_all()  # close() may be waiting for an idle port

    def _take(self) -> list[_Pending]:
        with self._cond:
            batch: list[_Pending] = []
            weight = 0
            while (self._queue and len(batch) < self.max_batch
                   and (not batch or weight + self._queue[0].weight <= self.max_weight)):
                pending = self._queue.pop(0)
                pending.taken = True
                batch.append(pending)
                weight += pending.weight
            return batch

    def _run(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        self._local.in_batch = True
        try:
            outcome = self._transaction(batch)
        except BaseException as exc:  # even an interrupted leader answers every submitter
            for pending in batch:
                error = StorageUnavailable("the group commit was interrupted: whether the write committed is "
                                           "unknown; retry")
                error.__cause__ = exc
                self._finish(pending, error=error)
            raise
        finally:
            self._local.in_batch = False
        seconds = time.perf_counter() - started
        count_batch(self.stats, self.observe, len(batch), sum(1 for _, error in outcome if error is not None), seconds)
        for pending, (value, error) in zip(batch, outcome):
            self._finish(pending, value, error)

    def _finish(self, pending: _Pending, value: Any = None, error: BaseException | None = None) -> None:
        with self._cond:
            pending.value, pending.error, pending.done = value, error, True
        pending.event.set()

    def _transaction(self, batch: list[_Pending]) -> list[tuple[Any, BaseException | None]]:
        """Each job's (result, exception), decided only once COMMIT has returned (or failed)."""
        jobs = [p.job for p in batch]
        for attempt in (1, 2):
            try:
                with self.direct.transaction() as conn:
                    values = run_jobs(conn, jobs)
                return [(value, None) for value in values]  # committed
            except Exception as exc:
                if len(batch) == 1:
                    if attempt == 1 and _retryable(exc):
                        self.stats["retried"] += 1
                        continue
                    return [(None, exc)]  # exactly what DirectWrites would have raised
                if is_unavailable(exc):
                    if attempt == 1 and _retryable(exc):
                        self.stats["retried"] += 1
                        log.info("group commit: deadlock with another writer, the batch runs again",
                                 extra={"jobs": len(batch)})
                        continue
                    return self._unavailable(batch, exc)
                log.info("group commit: the batch failed as a whole; each job on its own now",
                         extra={"error": f"{type(exc).__name__}: {exc}"[:300], "jobs": len(batch)})
                break
        try:
            return self._one_by_one(jobs)
        except Exception as exc:
            if is_unavailable(exc):
                return self._unavailable(batch, exc)
            log.exception("group commit: transaction failed", extra={"jobs": len(batch)})
            return [(None, exc)] * len(batch)

    def _one_by_one(self, jobs: list[WriteJob]) -> list[tuple[Any, BaseException | None]]:
        """Every job under a SAVEPOINT of its own: one that raises is rolled back alone."""
        outcome: list[tuple[Any, BaseException | None]] = []
        with self.direct.transaction() as conn:
            cursor = conn.connection.driver_connection.cursor()
            try:
                for job in jobs:
                    cursor.execute("SAVEPOINT group_commit_job")
                    try:
                        value = job.run(conn)
                    except Exception as exc:
                        if is_unavailable(exc):
                            raise  # the storage, not this job: the whole transaction goes
                        cursor.execute("ROLLBACK TO SAVEPOINT group_commit_job")
                        cursor.execute("RELEASE SAVEPOINT group_commit_job")
                        log.warning("group commit: a job failed and was rolled back alone",
                                    extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
                        outcome.append((None, exc))
                        continue
                    cursor.execute("RELEASE SAVEPOINT group_commit_job")
                    outcome.append((value, None))
            finally:
                cursor.close()
        return outcome  # committed

    def _unavailable(self, batch: list[_Pending], exc: Exception) -> list[tuple[Any, BaseException | None]]:
        log.warning("group commit: storage unavailable, the batch was rolled back",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300], "jobs": len(batch)})
        errors = []
        for _ in batch:  # one exception per submitter: each raises its own
            error = BatchUnavailable(f"the database is unavailable ({type(exc).__name__}); retry")
            error.__cause__ = exc
            errors.append((None, error))
        return errors


def _retryable(exc: BaseException) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _RETRY_STATES
