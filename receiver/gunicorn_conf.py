"""gunicorn settings for `alert-receiver serve`: sync workers, sized for the machine, graceful on SIGTERM.

Sync workers, not gthread: Alertmanager keeps connections alive, and gthread pins every kept-alive connection to
the worker that accepted it (measured: 8 connections on one worker, half the throughput). A sync worker closes
the connection after each response, so the kernel spreads new connections over every worker.
"""

from __future__ import annotations

import os


def default_workers(cpus: int | None = None) -> int:
    cpus = cpus or os.cpu_count() or 1
    return max(2, 2 * cpus + 1)


def settings(host: str, port: int, *, workers: int | None = None, forwarded_allow_ips: str | None = None) -> dict:
    return {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers or int(os.environ.get("RECEIVER_WORKERS", 0)) or default_workers(),
        "worker_class": "sync",
        # Alertmanager gives up on a webhook after about 10 s and sends it again: answer well within that.
        "timeout": 30,
        "graceful_timeout": 30,
        "keepalive": 2,
        "backlog": 2048,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "child_exit": child_exit,
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


def post_worker_init(worker) -> None:
    """A streamed export calls the worker's heartbeat after each batch: a sync worker is killed after `timeout`
    seconds without one, and a million-row export takes longer than that while making progress."""
    worker.wsgi.extensions["alert_receiver_heartbeat"] = worker.notify
