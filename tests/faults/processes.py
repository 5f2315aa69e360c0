"""The process tree of one `alert-receiver serve`, read from /proc: the gunicorn arbiter (the process the test
started), its forked web workers, and the supervisor's children (the engine, and the group-commit writer).
Fault tests pick their SIGKILL victims from it and wait, with a deadline, for serve to make the tree whole again."""

from __future__ import annotations

import dataclasses
import os
import time

from ..support.process import ReceiverProcess, wait_until


@dataclasses.dataclass(frozen=True)
class Tree:
    arbiter: int
    workers: tuple[int, ...]  # gunicorn workers
    engines: tuple[int, ...]  # `alert-receiver worker`, run by serve's supervisor
    writers: tuple[int, ...]  # `python -m receiver.writer`: the group commit of every worker


def _alive_children(parent: int) -> list[tuple[int, list[str]]]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        fields = stat.rsplit(") ", 1)[1].split()  # after "pid (comm) ": state, ppid, ...
        if int(fields[1]) == parent and fields[0] != "Z":
            out.append((int(entry), argv))
    return out


def tree(receiver: ReceiverProcess) -> Tree:
    arbiter = receiver.proc.pid
    workers, engines, writers = [], [], []
    for pid, argv in _alive_children(arbiter):
        if "receiver.writer" in argv:
            writers.append(pid)
        elif "worker" in argv:
            engines.append(pid)
        else:
            workers.append(pid)  # forked from the arbiter: its very argv
    return Tree(arbiter, tuple(sorted(workers)), tuple(sorted(engines)), tuple(sorted(writers)))


def wait_whole(receiver: ReceiverProcess, *, workers: int, writer: bool, not_pids: set[int] = frozenset(),
               timeout: float = 30.0) -> Tree:
    """The tree once it has every process again (and none of `not_pids`, the ones just killed)."""

    def whole():
        if receiver.proc.poll() is not None:
            raise AssertionError(f"serve exited with {receiver.proc.returncode}: {receiver.log()}")
        t = tree(receiver)
        alive = set(t.workers) | set(t.engines) | set(t.writers)
        return (len(t.workers) == workers and len(t.engines) == 1 and len(t.writers) == int(writer)
                and not alive & not_pids and t)

    return wait_until(whole, timeout=timeout, interval=0.05, what="serve to restart what was killed")


def start_serve(config_path, tmp_path, *args: str, workers: int = 2, port: int | None = None,
                timeout: float = 60.0, wait: bool = True) -> ReceiverProcess:
    """`alert-receiver serve *args`, ready (unless not `wait`). Its metrics directory is under tmp_path (serve removes
    its own only when it exits cleanly, not after a SIGKILL); `port`: take the address of a serve that was killed."""
    receiver = ReceiverProcess(config_path, workers=workers, log_path=str(tmp_path / "receiver.log"))
    if port is not None:
        receiver.port = port  # Alertmanager knows one address: the restarted serve takes it again
    metrics_dir = tmp_path / f"metrics-{time.monotonic_ns()}"
    metrics_dir.mkdir()
    receiver.env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    receiver.start(*args)
    return receiver.wait_ready(timeout=timeout) if wait else receiver
