"""Every child of `serve` dies with it, even when serve is SIGKILLed (issue #15, finding 5): no orphaned engine
pages with the routes of a config that is gone, and a new serve never runs its engine beside a stale one of the
same database.

Real processes: `alert-receiver serve` on SQLite (gunicorn workers, the SQLite writer, the engine), its tree read
from /proc, and only serve itself killed (not its process group, which would kill the children for it)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time

import pytest
import requests
import yaml

from ..faults.processes import wait_whole
from ..support.process import ReceiverProcess, wait_until

pytestmark = pytest.mark.e2e

WORKERS = 2
GONE_WITHIN_S = 5.0


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time in clock ticks) of `pid`, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Every live process below `root`, recursively: pid → start time (so that a reused pid is not taken for it)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        stat = _stat(int(entry)) if entry.isdigit() else None
        if stat is not None and stat[0] != "Z":
            children.setdefault(stat[1], []).append(int(entry))
            starts[int(entry)] = stat[2]
    found, todo = {}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = starts[child]
            todo.append(child)
    return found


def alive(recorded: dict[int, int]) -> list[int]:
    """The recorded processes still running (a zombie has finished: only its new parent's wait is missing)."""
    out = []
    for pid, start in recorded.items():
        stat = _stat(pid)
        if stat is not None and stat[0] != "Z" and stat[2] == start:
            out.append(pid)
    return out


def _kill_leftovers(recorded: dict[int, int]) -> None:
    for pid in alive(recorded):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump({"database": {"url": f"sqlite:///{tmp_path}/receiver.db"}}))
    return path


def _serve(config_path, tmp_path, name: str) -> ReceiverProcess:
    receiver = ReceiverProcess(config_path, workers=WORKERS, log_path=str(tmp_path / f"{name}.log"))
    receiver.env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / f"metrics-{name}")
    os.mkdir(receiver.env["PROMETHEUS_MULTIPROC_DIR"])
    return receiver.start()


def _kill_serve_only(receiver: ReceiverProcess) -> None:
    receiver.proc.send_signal(signal.SIGKILL)  # the arbiter alone: its children must notice by themselves
    receiver.proc.wait(10)
    receiver._log.close()


@pytest.mark.parametrize("restarted", [False, True], ids=["as-started", "restarted-children"])
def test_every_child_of_serve_dies_with_it_after_sigkill(config_path, tmp_path, restarted):
    """`restarted`: the writer and the engine were started again by the supervisor's thread (the kernel's
    parent-death signal follows the thread that forked a child, not its process)."""
    receiver = _serve(config_path, tmp_path, "serve").wait_ready()
    recorded: dict[int, int] = {}
    try:
        first = wait_whole(receiver, workers=WORKERS, writer=True, timeout=30)
        if restarted:
            for pid in first.engines + first.writers:
                os.kill(pid, signal.SIGKILL)
            wait_whole(receiver, workers=WORKERS, writer=True, not_pids={*first.engines, *first.writers}, timeout=30)
        recorded = descendants(receiver.proc.pid)
        assert len(recorded) >= WORKERS + 2, recorded  # the workers, the writer and the engine
        _kill_serve_only(receiver)
        killed = time.monotonic()
        try:
            wait_until(lambda: not alive(recorded), timeout=GONE_WITHIN_S, interval=0.02,
                       what="serve's children to exit")
        except TimeoutError:
            pytest.fail(f"still running {GONE_WITHIN_S}s after serve was killed: {alive(recorded)}\n{receiver.log()}")
        print(f"\n[serve children] {len(recorded)} processes gone {time.monotonic() - killed:.2f}s after kill -9")
    finally:
        _kill_leftovers(recorded)
        receiver.stop()


def _fire(receiver: ReceiverProcess) -> None:
    now = dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    body = {"version": "4", "status": "firing", "groupKey": "{}:{}", "alerts": [
        {"status": "firing", "labels": {"alertname": "StaleEngine", "severity": "critical", "service": "web"},
         "startsAt": now, "endsAt": "0001-01-01T00:00:00Z"}]}
    assert requests.post(receiver.url + "/webhook", json=body, timeout=10).status_code == 200


def test_a_new_serve_waits_out_a_stale_engine_of_the_same_database(tmp_path, sink):
    """An engine that outlives its serve (here: still sending a page to a provider that hangs, when serve is
    killed) keeps the database's engine lock: the next serve's engine stands by until it has exited."""
    config_path = tmp_path / "receiver.yml"
    config_path.write_text(yaml.safe_dump({
        "database": {"url": f"sqlite:///{tmp_path}/receiver.db"},
        "channels": {"pager": {"type": "webhook", "url": f"{sink.url}/hook", "timeout": "20s"}},
        "routes": [{"levels": {"L1": ["pager"]}}]}))
    sink.to_hold = 1
    old = _serve(config_path, tmp_path, "old").wait_ready()
    new = None
    recorded: dict[int, int] = {}
    try:
        stale = wait_whole(old, workers=WORKERS, writer=True, timeout=30).engines[0]
        recorded = descendants(old.proc.pid)
        _fire(old)
        wait_until(sink.held, timeout=30, what="the old engine's page to hang at the provider")
        _kill_serve_only(old)
        new = _serve(config_path, tmp_path, "new").wait_ready(timeout=30)
        engine = wait_whole(new, workers=WORKERS, writer=True, timeout=30).engines[0]
        wait_until(lambda: "engine of an earlier serve still runs" in new.log(), timeout=15,
                   what="the new engine to stand by")
        assert stale in alive(recorded) and f":{engine}" not in _started_engines(new.log()), new.log()
        sink.release()  # the old engine's page is answered: it finishes stopping
        wait_until(lambda: stale not in alive(recorded), timeout=15, what="the stale engine to exit")
        wait_until(lambda: f":{engine}" in _started_engines(new.log()), timeout=15, what="the new engine to start")
    finally:
        sink.release()
        _kill_leftovers(recorded)
        if new is not None:
            new.stop()
        old.stop()


def _started_engines(log: str) -> str:
    return "\n".join(line for line in log.splitlines() if "engine started" in line)
