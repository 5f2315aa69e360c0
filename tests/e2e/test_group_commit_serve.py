"""Group commit end to end: `serve` with its writer under concurrent posts from several processes, on SQLite and on
PostgreSQL (each serve its own writer), and the SQLite writer killed mid-load.

Every 200 is checked against the database at once, from the posting process: a 2xx must mean "committed"."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import time

import pytest
import requests
import sqlalchemy as sa
import yaml

from receiver.config import load_config
from receiver.writer.main import writer_argv
from receiver.writer.wire import socket_dir, socket_path
from receiver.store.db import normalise_url

from ..support.process import ReceiverProcess, wait_until

pytestmark = pytest.mark.e2e


def write_config(tmp_path, url: str):
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump({"database": {"url": url, "lock_timeout": "5s"}}))
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def config_path(request, tmp_path):
    if request.param == "sqlite":
        return write_config(tmp_path, f"sqlite:///{tmp_path}/receiver.db")
    return write_config(tmp_path, request.getfixturevalue("pg_server").database_for(tmp_path, "gc"))


@pytest.fixture
def sqlite_config_path(tmp_path):
    """The writer process exists for SQLite only."""
    return write_config(tmp_path, f"sqlite:///{tmp_path}/receiver.db")


def body(fingerprint: str) -> bytes:
    return json.dumps({
        "version": "4", "receiver": "e2e", "status": "firing", "groupKey": f"{{}}:{{n=\"{fingerprint}\"}}",
        "alerts": [{"status": "firing", "labels": {"alertname": "GroupCommitE2E", "severity": "critical",
                                                   "n": fingerprint},
                    "annotations": {}, "startsAt": "2026-11-23T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "fingerprint": fingerprint}],
    }).encode()


def _post_and_check(args) -> list[tuple[str, int, bool]]:
    """In a separate process: post each body, and after every 200 look its row up in the database at once."""
    base, url, fingerprints, retry = args
    engine = sa.create_engine(normalise_url(url))
    out = []
    try:
        for fp in fingerprints:
            deadline = time.monotonic() + 30
            while True:
                r = requests.post(base + "/webhook", data=body(fp), headers={"Content-Type": "application/json"},
                                  timeout=30)
                if r.status_code == 503:
                    assert r.headers.get("Retry-After"), r.text
                if r.status_code == 200 or not retry or time.monotonic() > deadline:
                    break
                time.sleep(0.05)  # Alertmanager's retry, compressed; bounded by the deadline
            stored = False
            if r.status_code == 200:
                with engine.connect() as conn:
                    stored = conn.execute(sa.text("SELECT count(*) FROM alerts WHERE fingerprint = :fp"),
                                          {"fp": fp}).scalar_one() == 1
            out.append((fp, r.status_code, stored))
    finally:
        engine.dispose()
    return out


def post_from_processes(base: str, url: str, fingerprints: list[str], *, processes: int = 4,
                        retry: bool = False) -> list[tuple[str, int, bool]]:
    parts = [fingerprints[i::processes] for i in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return [row for rows in pool.map(_post_and_check, [(base, url, p, retry) for p in parts]) for row in rows]


def writer_pids(url: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "receiver.writer" in argv and url in argv:
            pids.append(int(entry))
    return pids


def listening(path: str) -> bool:
    with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)) as probe:
        try:
            probe.connect(path)
            return True
        except OSError:
            return False


@contextlib.contextmanager
def serving(config_path):
    """`serve` and its writer; ensure_writer() waits for serve's writer and, on SQLite, starts one here if serve's
    does not come back (after a kill)."""
    config = load_config(str(config_path), env={})
    receiver = ReceiverProcess(config_path).start().wait_ready()
    ours: list[subprocess.Popen] = []
    argv = writer_argv(config)
    sqlite = config.database.url.startswith("sqlite")

    def ensure_writer():
        if argv is None:
            return
        if not sqlite:  # serve names its PostgreSQL writer's socket after its own pid
            path = os.path.join(socket_dir(), f"writer-pg-{receiver.proc.pid}.sock")
            wait_until(lambda: listening(path), timeout=30, what="serve's writer")
            return
        path = socket_path(config.database.url[len("sqlite:///"):])
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: listening(path), timeout=5, what="serve's writer")
            return
        ours.append(subprocess.Popen(argv))
        wait_until(lambda: listening(path), timeout=30, what="the writer's socket")

    try:
        ensure_writer()
        yield receiver, config, ensure_writer
    finally:
        code = receiver.stop()
        for proc in ours:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            proc.wait(40)
        assert code == 0, receiver.log()


def test_concurrent_posts_from_several_processes_are_all_committed_before_their_200(config_path):
    with serving(config_path) as (receiver, config, _):
        fingerprints = [f"{i:016x}" for i in range(1, 121)]
        results = post_from_processes(receiver.url, config.database.url, fingerprints)
        assert [code for _, code, _ in results] == [200] * len(fingerprints)
        assert all(stored for _, _, stored in results)
        alerts = requests.get(receiver.url + "/api/v1/alerts", params={"alertname": "GroupCommitE2E", "limit": 1000},
                              timeout=10).json()["alerts"]
        assert sorted(a["fingerprint"] for a in alerts) == fingerprints
        if writer_argv(config) is not None:
            assert writer_pids(config.database.url), "no writer ran"
            metrics = requests.get(receiver.url + "/metrics", timeout=10).text
            if "alert_receiver_group_commit_jobs_total" in metrics:  # serve's writer shares the metrics dir
                committed = sum(float(line.split()[-1]) for line in metrics.splitlines()
                                if line.startswith('alert_receiver_group_commit_jobs_total{result="committed"}'))
                assert committed >= len(fingerprints)


def test_killing_the_writer_costs_at_most_a_503_and_the_retry_lands(sqlite_config_path):
    with serving(sqlite_config_path) as (receiver, config, ensure_writer):
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(1) as pool:
            fingerprints = [f"{i:016x}" for i in range(1001, 1201)]
            pending = pool.map_async(_post_and_check, [(receiver.url, config.database.url, fingerprints, True)])
            time.sleep(0.5)  # let the load start; the kill then lands mid-stream
            killed = writer_pids(config.database.url)
            assert killed
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
            results = pending.get(120)[0]
        # Every body was eventually answered 200 (a 503 retried), and each 200 had its row at once.
        assert [code for _, code, _ in results] == [200] * len(fingerprints)
        assert all(stored for _, _, stored in results)
        # A new writer (serve's supervisor restarts it; before it is wired in, this test does) takes over again.
        wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in killed), timeout=10,
                   what="the killed writer to go")
        ensure_writer()
        again = post_from_processes(receiver.url, config.database.url, [f"{i:016x}" for i in range(2001, 2021)])
        assert [code for _, code, _ in again] == [200] * 20 and all(stored for _, _, stored in again)
        assert set(writer_pids(config.database.url)) - set(killed)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False
