"""The children of `serve` (gunicorn workers, the SQLite writer, the engine) die with it, even when it is
SIGKILLed, and a serve's engine never runs beside a stale engine of the same SQLite database.

Dying with serve (Linux): each child asks the kernel for a signal when its parent goes (prctl PR_SET_PDEATHSIG),
then checks that its parent is still the serve that started it: a serve that died before the prctl sent nothing.
The signal is SIGTERM, so each child stops as it does on serve's own SIGTERM (the engine finishes what it is
sending, the writer serves the workers still connected). The kernel sends it when the *thread* that forked the
child ends, not its process: supervisor.py keeps its restarting thread alive until the children have stopped.

Waiting out a stale engine: a serve's engine holds an flock on `<database>.engine-lock` beside its SQLite file
while it runs. An engine that outlives its serve anyway (stopped, stuck, another OS) keeps it, and the next serve's
engine stands by until the kernel drops it with its holder. PostgreSQL has no such lock: several engines there are
safe and expected (`alert-receiver worker`, several serves), and a serve's own engine dies with it.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import signal
import sys
from typing import Callable

log = logging.getLogger("receiver.lifeline")

PARENT_PID_ENV = "RECEIVER_SERVE_PID"  # set by serve's supervisor for its children only
_PR_SET_PDEATHSIG = 1


def child_env(parent_pid: int) -> dict[str, str]:
    """The environment of a child that must die with `parent_pid`."""
    return {**os.environ, PARENT_PID_ENV: str(parent_pid)}


def set_parent_death_signal(signum: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send `signum` when this process's parent ends; False where there is no such call."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed", extra={"error": errno.errorcode.get(ctypes.get_errno(), "?")})
        return False
    return True


def die_with_serve() -> int | None:
    """In a child of serve's supervisor (PARENT_PID_ENV set): die with serve from now on, or exit at once when
    serve is already gone. Returns serve's pid; None in a process serve did not start (nothing to do)."""
    value = os.environ.pop(PARENT_PID_ENV, "")  # popped: a process this one starts is not serve's child
    if not value.isdigit():
        return None
    parent = int(value)
    set_parent_death_signal()
    if os.getppid() != parent:  # serve died before the prctl: no signal will come
        log.warning("serve is gone; exiting", extra={"serve_pid": parent})
        raise SystemExit(0)
    return parent


def die_with_arbiter(worker) -> None:
    """gunicorn `post_fork` hook, in a new worker: die with the arbiter (serve) even while still booting."""
    set_parent_death_signal()
    if os.getppid() != worker.ppid:
        raise SystemExit(0)  # the arbiter died before the prctl


# --- one serve engine a SQLite database -------------------------------------------------------------------


def engine_lock_path(database_url: str) -> str | None:
    """`<database>.engine-lock` for a SQLite file; None for PostgreSQL and in-memory SQLite."""
    from sqlalchemy.engine import make_url

    from .store.db import normalise_url

    url = make_url(normalise_url(database_url))
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database) + ".engine-lock"


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
    except OSError:
        return "?"


def hold_engine_lock(path: str, wait: Callable[[float], bool]) -> int | None:
    """Take the engine lock at `path`, standing by while another engine holds it. `wait(seconds)` pauses between
    attempts and returns True when this engine is asked to stop. Returns the descriptor to keep open while the
    engine runs (the kernel releases it when this process ends), or None when stopped while standing by."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    warned = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if not warned:
                log.warning("the engine of an earlier serve still runs on this database; standing by until it exits",
                            extra={"lock": path, "holder_pid": _holder(fd)})
                warned = True
        if wait(0.5):
            os.close(fd)
            return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # who holds it, for the next one's log line
    if warned:
        log.info("the earlier engine has exited; starting", extra={"lock": path})
    return fd
