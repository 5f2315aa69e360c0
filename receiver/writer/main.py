"""The writer process: commits the jobs of every gunicorn worker and of the engine, many per COMMIT.

    python -m receiver.writer --database-url sqlite:///alert-receiver.db [--lock-timeout 5] [--synchronous FULL]
    python -m receiver.writer --database-url postgresql://... --socket PATH

`alert-receiver serve` starts it beside gunicorn (`writer_argv`); the workers and the engine find it by the SQLite
file's path, or on PostgreSQL by the socket serve names in their environment (wire.py), and write directly when it
is not there (client.py). It
needs no config: everything a job takes from the config travels in the job, so a worker's hot reload is never out
of step with it. The engine's claims and outcomes ride in the same group transactions as the webhooks: on SQLite,
under load the dispatcher took the writer lock about ten times a second and, preempted while holding it, kept the
webhooks waiting 5-6 ms each time and paid an fsync of its own; on PostgreSQL, transactions of its own beside the
writer measured no different.

Shutdown: on SIGTERM it stops listening at once (a process that connects later writes directly) and keeps serving
the connected ones until they exit, so gunicorn's graceful shutdown finishes its in-flight requests here. When
serve dies, even by SIGKILL, the kernel sends it that SIGTERM (receiver/lifeline.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import logging
import os
import signal
import sys
import time

from .. import gc_policy
from ..store.db import create_db_engine, normalise_url
from ..store.write_port import job_weight, run_jobs
from .group_commit import GroupCommitServer
from .wire import postgresql_socket_path, socket_path

log = logging.getLogger("receiver.writer")



def writer_argv(config, *, log_format: str = "logfmt", log_level: str = "INFO",
                preload: tuple[str, ...] = ()) -> list[str] | None:
    """The command that runs the writer for `config`'s database: for a SQLite file (its socket is named after the
    file), and for PostgreSQL (this replica's socket, which the caller, serve, must also put in the environment of
    its workers and engine: wire.WRITER_SOCKET_ENV; ALERT_RECEIVER_PG_WRITER=0 runs without one, each worker
    grouping its own threads' writes). None otherwise (in-memory SQLite). `preload`: the modules of the jobs the
    caller will send, imported before the writer says it is ready."""
    d = config.database
    url = normalise_url(d.url)
    common = ["--lock-timeout", f"{d.lock_timeout.total_seconds():g}", "--log-format", log_format,
              "--log-level", log_level, *([] if d.prepared_statements else ["--no-prepared-statements"]),
              *(arg for module in preload for arg in ("--preload", module))]
    if url.startswith("postgresql"):
        if os.environ.get("ALERT_RECEIVER_PG_WRITER") == "0":
            return None
        return [sys.executable, "-m", "receiver.writer", "--database-url", url, "--socket",
                postgresql_socket_path(), *common]
    if not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    if socket_path(make_url(url).database or "") is None:
        return None
    return [sys.executable, "-m", "receiver.writer", "--database-url", url, "--synchronous",
            d.sqlite_synchronous, *common]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m receiver.writer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--lock-timeout", type=float, default=5.0, help="seconds [5]")
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"], help="SQLite only")
    parser.add_argument("--socket", default=None, help="PostgreSQL: the socket to listen on (serve chooses it)")
    parser.add_argument("--no-prepared-statements", dest="prepared_statements", action="store_false",
                        help="PostgreSQL: prepare nothing (database.prepared_statements: false)")
    parser.add_argument("--preload", action="append", default=[], metavar="MODULE",
                        help="a module whose jobs this writer will run, imported before it is ready (repeatable)")
    parser.add_argument("--max-batch", type=int, default=64, help="webhooks per transaction at most [64]")
    parser.add_argument("--drain", type=float, default=35.0, help="seconds to keep serving workers after SIGTERM [35]")
    parser.add_argument("--log-format", choices=["logfmt", "json"], default=os.environ.get("RECEIVER_LOG_FORMAT", "logfmt"))
    parser.add_argument("--log-level", default=os.environ.get("RECEIVER_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)

    from .. import logs
    from ..lifeline import die_with_serve

    logs.configure(args.log_format, args.log_level)
    die_with_serve()  # SIGTERM when serve dies: the same drain as on serve's own stop
    # Unpickling a job imports its class's module: for the webhook's (the engine's ingest) 0.3-0.4 s, which the first
    # webhook after start-up waited for. The caller names them; they are imported before the socket is bound.
    for module in args.preload:
        importlib.import_module(module)
    from prometheus_client import CollectorRegistry

    from ..metrics import GroupCommitMetrics, check_multiprocess_ready

    check_multiprocess_ready()
    metrics = GroupCommitMetrics(CollectorRegistry())
    # temp_store=MEMORY: a group transaction runs under SAVEPOINTs, and SQLite keeps the original of every page
    # they change in a statement journal, which past 64 KiB spills to a temporary file: one open, unlink and two
    # writes per page per transaction, about half of the writer's system calls. The batch is bounded (max_weight),
    # and so is the journal in memory.
    engine = create_db_engine(args.database_url, lock_timeout=dt.timedelta(seconds=args.lock_timeout),
                              sqlite_synchronous=args.synchronous, sqlite_temp_store="MEMORY", pre_ping=False,
                              prepared_statements=args.prepared_statements)
    path = args.socket if engine.dialect.name == "postgresql" else socket_path(engine)
    if path is None:
        parser.error("the database must be a SQLite file, or PostgreSQL with --socket")

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

    server = GroupCommitServer(
        engine, lambda conn, job: job.run(conn), path, handle_many=run_jobs, max_batch=args.max_batch,
        queue_timeout_s=args.lock_timeout, weight=job_weight, observe=metrics.observe)
    waited = False
    while not server.bind():
        if not waited:
            log.warning("another writer serves this socket; standing by", extra={"socket": path})
            waited = True
        if stopping():
            return 0
        time.sleep(1.0)  # until the other writer goes away
    # Unpickling snapshots allocates a lot: keep what start-up built out of every collection.
    gc_policy.settle_after_startup()
    log.info("writer ready", extra={"socket": path, "pid": os.getpid()})
    try:
        server.serve(stopping=stopping, drain_s=args.drain)
    finally:
        server.stop_listening()
        engine.dispose()
    st = server.stats
    log.info("writer stopped", extra={**st, "seconds": round(st["seconds"], 3),
                                             "mean_batch": round(st["jobs"] / max(1, st["transactions"]), 2)})
    return 0
