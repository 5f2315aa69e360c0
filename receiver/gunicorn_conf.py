"""gunicorn settings for `alert-receiver serve`: threaded workers sized for the machine, one request per
connection, graceful on SIGTERM.

gthread workers with `keepalive: 0`: every response says `Connection: close`, exactly as a sync worker's does, so a
client that keeps connections alive (Alertmanager does) opens a new one per webhook and the kernel spreads them over
every worker: no connection is pinned to the worker that accepted it (with keep-alive on, gthread pinned 8 kept-alive
connections to one worker: half the throughput). A worker accepts only while it has a free thread
(`worker_connections` = `threads`); the rest wait in the kernel's backlog for whichever worker frees one first.

Why threads and not one process per request (sync workers): a webhook's answer waits for its COMMIT (SQLite: for the
writer process's group commit), and a sync worker sleeps through that wait and resumes on cold caches. Measured on
2 cores with 1-alert webhooks (bench/ingest.py): 5 sync workers spent 1.4-1.9 ms of CPU per request; 2 workers of
8 threads 0.7-1.2 ms, and handled 30-55 % more webhooks per second in back-to-back pairs. The threads of a worker
also hand the writer several jobs at once, so more webhooks share each fsync.
"""

from __future__ import annotations

import os

from . import gc_policy

DEFAULT_THREADS = 8


def default_workers(cpus: int | None = None) -> int:
    cpus = cpus or os.cpu_count() or 1
    return max(2, cpus)


def settings(host: str, port: int, *, workers: int | None = None, threads: int | None = None,
             forwarded_allow_ips: str | None = None) -> dict:
    threads = threads or int(os.environ.get("RECEIVER_THREADS", 0)) or DEFAULT_THREADS
    return {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers or int(os.environ.get("RECEIVER_WORKERS", 0)) or default_workers(),
        # gthread whose event loop reads each request whole first: slow clients never hold a thread
        "worker_class": "receiver.gunicorn_worker.BoundedThreadWorker",
        "threads": threads,
        "worker_connections": threads,  # requests being handled; those still being read are not counted
        # Alertmanager gives up on a webhook after about 10 s and sends it again: answer well within that.
        "timeout": 30,
        "graceful_timeout": 30,
        "keepalive": 0,  # close after every response (see above)
        "backlog": 2048,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "child_exit": child_exit,
        "post_fork": post_fork,
        "post_worker_init": post_worker_init,
        # Whose X-Forwarded-Proto gunicorn believes (wsgi.url_scheme); server.TrustedProxyFix does the same for
        # the client address, with the same list.
        "forwarded_allow_ips": forwarded_allow_ips or os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"),
    }


def child_exit(server, worker) -> None:
    """A dead worker's live gauges must not linger in the shared metrics directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_fork(_server, worker) -> None:
    """A worker stops with the arbiter at once, even a SIGKILLed one and while it is still loading the app (its own
    check of the arbiter's pid runs about once a second, and only once it serves): SIGTERM, gunicorn's graceful
    stop, so its requests in flight are still answered."""
    from .lifeline import die_with_arbiter

    die_with_arbiter(worker)


def post_worker_init(worker) -> None:
    """A streamed export calls the worker's heartbeat after each batch. A gthread worker's main loop beats on its
    own; a sync worker (`gunicorn -k sync receiver.wsgi:app`) is killed after `timeout` seconds without a beat, and a
    million-row export takes longer than that while making progress. Then the garbage collector stops walking
    what the worker has loaded (gc_policy.py: a full collection held the GIL for 60-170 ms under load)."""
    worker.wsgi.extensions["alert_receiver_heartbeat"] = worker.notify
    gc_policy.settle_after_startup()
