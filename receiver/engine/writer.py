"""The SQLite writer process: applies the snapshots that gunicorn workers prepared, many per COMMIT (group commit),
and the engine's outbox writes (claims and outcomes) in the same transactions.

    python -m receiver.engine.writer --database-url sqlite:///alert-receiver.db [--lock-timeout 5] [--synchronous FULL]

`alert-receiver serve` starts it beside gunicorn when the database is SQLite (`sqlite_writer_argv`); the workers
find it by the database's path (store/group_commit.py) and write directly when it is not there. It needs no config:
everything a write takes from the config travels in the prepared snapshot, so a worker's hot reload is never out of
step with it.

The engine's dispatcher hands its claim and outcome writes here too (`write`): under load it took the writer lock
about ten times a second and, preempted while holding it, kept the workers' webhooks waiting 5-6 ms each time and
paid an fsync of its own. As jobs they ride along in the next group transaction.

Shutdown: on SIGTERM it stops listening at once (a worker that connects later writes directly) and keeps serving the
workers that are connected until they exit, so gunicorn's graceful shutdown finishes its in-flight requests here.
When serve dies, even by SIGKILL, the kernel sends it that SIGTERM (receiver/lifeline.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import logging
import os
import signal
import sys
import time
from typing import Any, Callable, NamedTuple

from ..store import delivery as delivery_store
from ..store import group_commit
from ..domain import AlertStatus
from ..store.db import create_db_engine, normalise_url, write_transaction
from ..store.sql import sqlite_datetime
from .ingest import IngestResult, PreparedSnapshot, apply_snapshot, apply_snapshots

log = logging.getLogger("receiver.writer")

_BATCH_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 48, 64)
_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclasses.dataclass(frozen=True, slots=True)
class IngestJob:
    """One webhook for the writer: its snapshot, prepared by the worker outside any lock, and its raw body."""

    prepared: PreparedSnapshot
    raw_body: bytes | None


# The store writes other processes may hand the writer, by name: a job names one of these, never a function.
STORE_WRITES: dict[str, Callable[..., Any]] = {
    "delivery.claim_due": delivery_store.claim_due,
    "delivery.record_outcomes": delivery_store.record_outcomes,
}


@dataclasses.dataclass(frozen=True, slots=True)
class StoreWrite:
    """One store function of STORE_WRITES, called with the writer's connection and these keyword arguments."""

    operation: str
    arguments: dict[str, Any]

    def run(self, conn) -> Any:
        return STORE_WRITES[self.operation](conn, **self.arguments)


def write(engine, operation: str, **arguments) -> Any:
    """Run the store write `operation` in the SQLite writer's next group transaction, or, when this database has no
    writer listening (PostgreSQL, a writer restarting, in-process tests), in a write transaction of our own. Returns
    what the store function returns, once committed; raises what group_commit.submit raises."""
    job = StoreWrite(operation, arguments)
    result = group_commit.submit(engine, job)
    if result is group_commit.NOT_RUNNING:
        with write_transaction(engine) as conn:
            result = job.run(conn)
    return result


def apply_job(conn, job: IngestJob | StoreWrite) -> Any:
    if isinstance(job, StoreWrite):
        return job.run(conn)
    return apply_snapshot(conn, job.prepared, raw_body=job.raw_body)


def apply_jobs(conn, jobs: list[IngestJob | StoreWrite]) -> list[Any]:
    """The webhooks of a batch together, with the statements of about one; then the store writes, each on its own."""
    results: list[Any] = [None] * len(jobs)
    ingest = [k for k, job in enumerate(jobs) if isinstance(job, IngestJob)]
    if ingest:
        applied = apply_snapshots(conn, [(jobs[k].prepared, jobs[k].raw_body) for k in ingest])
        for k, result in zip(ingest, applied, strict=True):
            results[k] = result
    for k, job in enumerate(jobs):
        if isinstance(job, StoreWrite):
            results[k] = job.run(conn)
    return results


def job_weight(job: IngestJob | StoreWrite) -> int:
    return len(job.prepared.alerts) + 1 if isinstance(job, IngestJob) else 1


def commit_snapshot(engine, prepared: PreparedSnapshot, raw_body: bytes | None):
    """Ingest through the SQLite writer: the IngestResult once committed, or group_commit.NOT_RUNNING when there is
    no writer for this database (the caller then writes directly). Raises what store.group_commit.submit raises."""
    client = group_commit.client_for(engine)
    if client is None:
        return group_commit.NOT_RUNNING
    return client.submit(IngestJob(_wire_form(prepared), raw_body))


class WireAlert(NamedTuple):
    """What the writer needs of an alert (snapshot.decide and the events): no labels (they travel encoded, in the
    prepared row). A tuple unpickles several times faster than the dataclass, and unpickling is the writer's."""

    fingerprint: str
    status: AlertStatus
    annotations: dict[str, str]
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    generator_url: str


_ROW_DATETIMES = ("starts_at", "ends_at", "level_entered_at", "next_action_at", "acked_at", "ack_expires_at",
                  "resolved_at", "received_at", "updated_at")


def _wire_form(prepared: PreparedSnapshot) -> PreparedSnapshot:
    """The snapshot as the SQLite writer needs it, with as much of the work done here, in the worker, as can be:
    alerts without their labels, the rows' datetimes already in SQLite's text format."""
    wire = {id(a): WireAlert(a.fingerprint, a.status, a.annotations, a.starts_at, a.ends_at, a.generator_url)
            for a in prepared.payload.alerts}
    payload = dataclasses.replace(prepared.payload, alerts=[wire[id(a)] for a in prepared.payload.alerts],
                                  group_labels={})
    rows = {}
    for fp, row in prepared.rows.items():
        row = dict(row)
        for name in _ROW_DATETIMES:
            row[name] = sqlite_datetime(row[name])
        rows[fp] = row
    return dataclasses.replace(prepared, payload=payload, alerts=[wire[id(a)] for a in prepared.alerts], rows=rows)


def sqlite_writer_argv(config, *, log_format: str = "logfmt", log_level: str = "INFO") -> list[str] | None:
    """The command that runs the writer for `config`'s database; None unless it is a SQLite file."""
    d = config.database
    url = normalise_url(d.url)
    if not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    if group_commit.socket_path(make_url(url).database or "") is None:
        return None
    return [sys.executable, "-m", "receiver.engine.writer", "--database-url", url,
            "--lock-timeout", f"{d.lock_timeout.total_seconds():g}", "--synchronous", d.sqlite_synchronous,
            "--log-format", log_format, "--log-level", log_level]


class WriterMetrics:
    def __init__(self, registry):
        from prometheus_client import Counter, Histogram

        self.batch_size = Histogram(
            "alert_receiver_sqlite_group_commit_batch_size",
            "Jobs (webhooks, the engine's outbox claims and outcomes) per SQLite transaction (group commit).",
            buckets=_BATCH_BUCKETS, registry=registry)
        self.transaction_seconds = Histogram(
            "alert_receiver_sqlite_group_commit_seconds",
            "Time of one group transaction in the SQLite writer, writer lock to COMMIT.",
            buckets=_SECONDS_BUCKETS, registry=registry)
        self.jobs = Counter(
            "alert_receiver_sqlite_group_commit_jobs",
            "Jobs (webhooks, the engine's outbox claims and outcomes) handled by the SQLite writer, by result.", ["result"],
            registry=registry)

    def observe(self, jobs: int, failed: int, seconds: float) -> None:
        self.batch_size.observe(jobs)
        self.transaction_seconds.observe(seconds)
        if jobs - failed:
            self.jobs.labels(result="committed").inc(jobs - failed)
        if failed:
            self.jobs.labels(result="failed").inc(failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m receiver.engine.writer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--lock-timeout", type=float, default=5.0, help="seconds [5]")
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    parser.add_argument("--max-batch", type=int, default=64, help="webhooks per transaction at most [64]")
    parser.add_argument("--drain", type=float, default=35.0, help="seconds to keep serving workers after SIGTERM [35]")
    parser.add_argument("--log-format", choices=["logfmt", "json"], default=os.environ.get("RECEIVER_LOG_FORMAT", "logfmt"))
    parser.add_argument("--log-level", default=os.environ.get("RECEIVER_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)

    from .. import logs
    from ..lifeline import die_with_serve

    logs.configure(args.log_format, args.log_level)
    die_with_serve()  # SIGTERM when serve dies: the same drain as on serve's own stop
    from prometheus_client import CollectorRegistry

    from ..metrics import check_multiprocess_ready

    check_multiprocess_ready()
    metrics = WriterMetrics(CollectorRegistry())
    # temp_store=MEMORY: a group transaction runs under SAVEPOINTs, and SQLite keeps the original of every page
    # they change in a statement journal, which past 64 KiB spills to a temporary file: one open, unlink and two
    # writes per page per transaction, about half of the writer's system calls. The batch is bounded (max_weight),
    # and so is the journal in memory.
    engine = create_db_engine(args.database_url, lock_timeout=dt.timedelta(seconds=args.lock_timeout),
                              sqlite_synchronous=args.synchronous, sqlite_temp_store="MEMORY")
    path = group_commit.socket_path(engine)
    if path is None:
        parser.error("the database must be a SQLite file")

    stop = []
    parent = os.getppid()

    def on_signal(signum, _frame):
        stop.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # serve's reload: the writer has no config to reload

    def stopping() -> bool:
        # serve is gone: nobody would stop us (without a parent-death signal, off Linux, this is how we learn it)
        return bool(stop) or os.getppid() != parent

    server = group_commit.GroupCommitServer(
        engine, apply_job, path, handle_many=apply_jobs, max_batch=args.max_batch, queue_timeout_s=args.lock_timeout, weight=job_weight,
        observe=metrics.observe)
    waited = False
    while not server.bind():
        if not waited:
            log.warning("another SQLite writer serves this database; standing by", extra={"socket": path})
            waited = True
        if stopping():
            return 0
        time.sleep(1.0)  # until the other writer goes away
    # Unpickling snapshots allocates a lot: keep what start-up built out of every collection.
    gc.freeze()
    log.info("SQLite writer ready", extra={"socket": path, "pid": os.getpid()})
    try:
        server.serve(stopping=stopping, drain_s=args.drain)
    finally:
        server.stop_listening()
        engine.dispose()
    st = server.stats
    log.info("SQLite writer stopped", extra={**st, "seconds": round(st["seconds"], 3),
                                             "mean_batch": round(st["jobs"] / max(1, st["transactions"]), 2)})
    return 0


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy: the jobs the workers pickle are instances of
    # receiver.engine.writer's classes, and isinstance against __main__'s twins would be false.
    from receiver.engine.writer import main as module_main

    sys.exit(module_main())
