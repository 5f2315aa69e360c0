"""The write port: every write to the database goes through one `Writes` object, built once at start-up and
handed to the web app and the engine.

Two ways in:

- `submit(job)`: a typed job (`IngestSnapshot`, `ClaimDue`, `RecordOutcomes`, ...) whose `run(conn)` does the
  writing; the result comes back once COMMIT has returned. Jobs are plain, picklable values, so an implementation
  may run them in another process: on SQLite, `receiver.writer` commits the jobs of every worker together
  (group commit) and falls back to a transaction here when its process is not there.
- `transaction()`: a write transaction in this process, for the interactive writes (an acknowledgement reads and
  changes rows in one go, under the caller's config), the engine's batches and housekeeping.

`DirectWrites` is the plain implementation: one transaction per job (PostgreSQL, in-process apps and tests).
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar, Iterator, Protocol, Sequence

from sqlalchemy.engine import Connection, Engine

from .db import write_transaction


class WriteJob(Protocol):
    """One unit of writing. `run` writes in the caller's transaction and returns what the submitter gets back."""

    def run(self, conn: Connection) -> Any: ...


class BatchedJob(WriteJob, Protocol):
    """A job whose kind can write many of its instances with the statements of about one (`run_many`), for an
    implementation that commits many jobs together. `weight` bounds the size of such a batch."""

    batched: ClassVar[bool]

    @property
    def weight(self) -> int: ...

    @classmethod
    def run_many(cls, conn: Connection, jobs: Sequence[Any]) -> list[Any]: ...


def run_jobs(conn: Connection, jobs: Sequence[WriteJob]) -> list[Any]:
    """Several jobs in the caller's transaction, each kind that can batch with one `run_many`, in order of kind's
    first appearance; the others one by one. Returns the results in the jobs' order."""
    results: list[Any] = [None] * len(jobs)
    kinds: dict[type, list[int]] = {}
    for k, job in enumerate(jobs):
        kinds.setdefault(type(job), []).append(k)
    for kind, members in kinds.items():
        if getattr(kind, "batched", False) and len(members) > 1:
            for k, result in zip(members, kind.run_many(conn, [jobs[k] for k in members]), strict=True):
                results[k] = result
        else:
            for k in members:
                results[k] = jobs[k].run(conn)
    return results


def job_weight(job: WriteJob) -> int:
    return max(1, getattr(job, "weight", 1))


def count_batch(stats: dict[str, float], observe, jobs: int, failed: int, seconds: float) -> None:
    """One group-commit transaction in the counters both group-commit implementations keep (the SQLite writer's
    loop, GroupWrites) and to their observer, if any."""
    stats["transactions"] += 1
    stats["jobs"] += jobs
    stats["failed"] += failed
    stats["seconds"] += seconds
    if observe is not None:
        observe(jobs, failed, seconds)


class Writes:
    """The port. `db` is the database written to (readers use it for their own read transactions)."""

    db: Engine

    def submit(self, job: WriteJob) -> Any:
        """Run `job`; return its result once committed. Raises what the database raises (see db.is_unavailable)."""
        raise NotImplementedError

    def transaction(self) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction in this process: commits when the block ends without an exception."""
        raise NotImplementedError

    def close(self) -> None:
        """Let go of what the implementation holds (connections to another process); the database stays open."""


class DirectWrites(Writes):
    """Every job in a write transaction of its own, in this process."""

    def __init__(self, db: Engine):
        self.db = db

    def submit(self, job: WriteJob) -> Any:
        with write_transaction(self.db) as conn:
            return job.run(conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        with write_transaction(self.db) as conn:
            yield conn
