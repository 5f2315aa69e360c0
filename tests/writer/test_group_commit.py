"""Group commit: the SQLite writer runs several workers' snapshots in one transaction, answers each only after
COMMIT, and a snapshot that fails is rolled back alone. The server is driven step by step here (poll, then
run_batch), so which jobs share a transaction is decided by the test, not by timing."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from receiver import payload as payload_mod
from receiver.app import create_app
from receiver.config import Config
from receiver.engine.ingest import prepare
from receiver.engine.ingest_job import IngestSnapshot
from receiver.writer.client import (NOT_RUNNING, GroupCommitClient, GroupCommitWrites, JobFailed, WriterLost,
                                           open_writes)
from receiver.writer.main import writer_argv
from receiver.writer import group_commit as writer_server
from receiver.writer import wire
from receiver.writer.group_commit import GroupCommitServer
from receiver.writer.wire import socket_path
from receiver.store import outbox
from receiver.store.db import StorageUnavailable, create_db_engine, is_unavailable, write_transaction
from receiver.store.group_writes import GroupWrites
from receiver.store.write_port import job_weight, run_jobs

from ..conftest import T0, table_counts
from ..support.process import wait_until

BAD_FINGERPRINT = "baadbaadbaadbaad"


def body(fingerprint: str, *, group: str = "g") -> bytes:
    return json.dumps({
        "version": "4", "receiver": "r", "status": "firing", "groupKey": f"{{}}:{{g=\"{group}-{fingerprint}\"}}",
        "alerts": [{"status": "firing", "labels": {"alertname": "GroupCommit", "severity": "critical", "n": fingerprint},
                    "annotations": {"summary": fingerprint}, "startsAt": "2026-11-23T08:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z", "fingerprint": fingerprint}],
    }).encode()


def job(config, fingerprint: str) -> IngestSnapshot:
    raw = body(fingerprint)
    return IngestSnapshot(prepare(payload_mod.parse(raw), config=config, now=T0), raw)


def apply_or_fail(conn, job: IngestSnapshot):
    """The writer's handler, with a bug planted for one fingerprint (after it has written: the savepoint must undo
    its rows)."""
    result = job.run(conn)
    if planted(job):
        raise ValueError("planted failure")
    return result


def apply_many_or_fail(conn, jobs: list[IngestSnapshot]):
    results = run_jobs(conn, jobs)
    if any(planted(j) for j in jobs):
        raise ValueError("planted failure")
    return results


def planted(job) -> bool:
    return isinstance(job, IngestSnapshot) and any(a.fingerprint == BAD_FINGERPRINT for a in job.prepared.alerts)


def stored_fingerprints(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT fingerprint FROM alerts")).scalars())


@pytest.fixture
def db_url(tmp_path, sqlite_template):
    """Most tests here run the writer on SQLite; the PostgreSQL ones (named so) use pg_template_url themselves."""
    path = tmp_path / "receiver.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_config(make_config):
    return make_config()


@pytest.fixture
def engine(sqlite_config):
    engine = create_db_engine(sqlite_config.database.url, lock_timeout=dt.timedelta(seconds=2))
    yield engine
    engine.dispose()


@pytest.fixture
def server(engine):
    server = GroupCommitServer(engine, apply_or_fail, socket_path(engine), handle_many=apply_many_or_fail,
                               weight=job_weight)
    assert server.bind()
    yield server
    server.stop_listening()


class Submitter:
    """Clients submitting from threads, as gunicorn workers would from processes; results collected by name."""

    def __init__(self, path: str):
        self.path = path
        self.results: dict[str, object] = {}
        self.threads: list[threading.Thread] = []

    def submit(self, name: str, job) -> None:
        def run():
            client = GroupCommitClient(self.path, reply_timeout_s=10)
            try:
                self.results[name] = client.submit(job)
            except Exception as exc:
                self.results[name] = exc
            finally:
                client.close()

        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)

    def join(self) -> dict[str, object]:
        for thread in self.threads:
            thread.join(10)
        return self.results


def queue_jobs(server: GroupCommitServer, count: int) -> None:
    wait_until(lambda: server.poll(0.05) or len(server._queue) >= count, timeout=10, what=f"{count} queued jobs")


def test_jobs_of_several_workers_share_one_transaction_and_are_answered_after_commit(sqlite_config, engine, server):
    submitter = Submitter(server.path)
    fingerprints = [f"{i:016x}" for i in range(1, 6)]
    for fp in fingerprints:
        submitter.submit(fp, job(sqlite_config, fp))
    queue_jobs(server, 5)
    assert not stored_fingerprints(engine)
    server.run_batch()
    results = submitter.join()
    assert server.stats["transactions"] == 1 and server.stats["jobs"] == 5
    assert {fp: r.outcomes["new"] for fp, r in results.items()} == {fp: 1 for fp in fingerprints}
    assert stored_fingerprints(engine) == set(fingerprints)
    counts = table_counts(engine)
    assert counts["alert_events"] == 5 and counts["notification_items"] == 5 and counts["webhook_bodies"] == 5


def test_the_threads_of_one_worker_each_have_a_job_in_flight(sqlite_config, engine, server):
    """A gthread worker has one client and several request threads: each thread has its own connection, so their
    webhooks reach the writer together and share its next COMMIT instead of waiting for one another."""
    client = GroupCommitClient(server.path, reply_timeout_s=10)
    fingerprints = [f"{i:016x}" for i in range(0x21, 0x24)]
    results: dict[str, object] = {}

    def run(fp: str) -> None:
        try:
            results[fp] = client.submit(job(sqlite_config, fp))
        except Exception as exc:
            results[fp] = exc

    threads = [threading.Thread(target=run, args=(fp,)) for fp in fingerprints]
    for thread in threads:
        thread.start()
    try:
        queue_jobs(server, 3)  # all three arrived while none has been answered
        assert len(server._peers) == 3
        server.run_batch()
    finally:
        for thread in threads:
            thread.join(10)
        client.close()
    assert server.stats["transactions"] == 1 and server.stats["jobs"] == 3
    assert {fp: r.outcomes["new"] for fp, r in results.items()} == {fp: 1 for fp in fingerprints}
    assert stored_fingerprints(engine) == set(fingerprints)


def test_the_engines_outbox_writes_ride_in_the_writers_group_transaction(sqlite_config, engine, server):
    """The dispatcher's claim and its outcomes are jobs like the webhooks: they share the next COMMIT instead of
    taking the writer lock (and an fsync) of their own, and the claim sees the first page of a webhook committed
    in the same transaction."""
    submitter = Submitter(server.path)
    fingerprint = "00000000000000e1"
    submitter.submit("webhook", job(sqlite_config, fingerprint))
    queue_jobs(server, 1)
    submitter.submit("claim", outbox.ClaimDue(
        now=T0 + dt.timedelta(minutes=1), worker="engine-a", lease=dt.timedelta(minutes=2), limit=10))
    queue_jobs(server, 2)
    server.run_batch()
    results = submitter.join()
    assert server.stats["transactions"] == 1 and server.stats["jobs"] == 2
    assert results["webhook"].outcomes["new"] == 1
    [claimed] = results["claim"]
    assert isinstance(claimed, outbox.Claimed) and claimed.channel

    with engine.connect() as conn:
        [alert_id] = conn.execute(sa.text("SELECT id FROM alerts WHERE fingerprint = :fp"), {"fp": fingerprint}).scalars()
        assert conn.execute(sa.text("SELECT claimed_by FROM notifications WHERE id = :id"),
                            {"id": claimed.id}).scalar() == "engine-a"
    sent_at = T0 + dt.timedelta(minutes=1, seconds=1)
    record = outbox.RecordOutcomes(
        (outbox.Outcome(claimed.id, "sent", True, sent_at),), worker="engine-a",
        notified={claimed.id: [alert_id]})
    submitter = Submitter(server.path)
    submitter.submit("record", record)
    queue_jobs(server, 1)
    server.run_batch()
    assert submitter.join()["record"] == {claimed.id}
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT status, claimed_by FROM notifications WHERE id = :id"), {"id": claimed.id}).one()
        first_notified = conn.execute(sa.text("SELECT notified_at FROM alert_first_notifications "
                                              "WHERE alert_id = :id"), {"id": alert_id}).scalar()
    assert tuple(row) == ("sent", None) and first_notified is not None
    assert server.stats["transactions"] == 2


def test_without_a_writer_a_job_runs_in_a_transaction_of_its_own(sqlite_config, engine):
    claim = outbox.ClaimDue(now=T0 + dt.timedelta(minutes=1), worker="engine-b",
                                    lease=dt.timedelta(minutes=2), limit=10)
    assert GroupCommitClient(socket_path(engine)).submit(claim) is NOT_RUNNING
    writes = open_writes(engine)
    assert isinstance(writes, GroupCommitWrites)
    raw = body("00000000000000e2")
    result = writes.submit(IngestSnapshot(prepare(payload_mod.parse(raw), config=sqlite_config, now=T0), raw))
    assert result.outcomes["new"] == 1
    claimed = writes.submit(claim)
    assert len(claimed) == 1
    with engine.connect() as conn:  # committed: another connection sees the lease
        assert conn.execute(sa.text("SELECT claimed_by FROM notifications")).scalars().all() == ["engine-b"]


def one_bad_among_two_good(config, engine, server, good: list[str]) -> None:
    """One batch of a good, a planted bad and a good snapshot: the bad one alone fails, and its rows (written before
    it raised) are rolled back; the good ones commit in the same transaction."""
    submitter = Submitter(server.path)
    submitter.submit(good[0], job(config, good[0]))
    submitter.submit("bad", job(config, BAD_FINGERPRINT))
    submitter.submit(good[1], job(config, good[1]))
    queue_jobs(server, 3)
    server.run_batch()
    results = submitter.join()
    assert server.stats == {"transactions": 1, "jobs": 3, "failed": 1, "seconds": server.stats["seconds"]}
    assert isinstance(results["bad"], JobFailed) and "planted failure" in str(results["bad"])
    assert not is_unavailable(results["bad"])  # a bug: 500, not a 503 that Alertmanager would retry forever
    assert all(results[fp].outcomes["new"] == 1 for fp in good)
    assert stored_fingerprints(engine) == set(good)
    counts = table_counts(engine)
    assert counts["alert_events"] == 2 and counts["notification_items"] == 2 and counts["webhook_bodies"] == 2


def empty_postgresql(engine) -> None:
    """This module's db_url is SQLite's: the PostgreSQL tests empty the shared database themselves."""
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE alerts, webhook_bodies, notifications RESTART IDENTITY CASCADE"))


def test_one_bad_snapshot_fails_alone_and_leaves_no_row(sqlite_config, engine, server):
    one_bad_among_two_good(sqlite_config, engine, server, ["00000000000000a1", "00000000000000a2"])


@pytest.mark.postgres
def test_a_processs_own_group_commit_counts_in_the_group_commit_metrics(pg_template_url, monkeypatch):
    monkeypatch.delenv(wire.WRITER_SOCKET_ENV, raising=False)  # no writer: the worker groups its own threads' writes
    config = Config.model_validate({"database": {"url": pg_template_url}})
    registry = CollectorRegistry()
    app = create_app(config, registry=registry)
    db = app.extensions["alert_receiver"].db
    try:
        empty_postgresql(db)
        headers = {"Content-Type": "application/json"}
        for fp in ("00000000000000e1", "00000000000000e2"):
            assert app.test_client().post("/webhook", data=body(fp), headers=headers).status_code == 200
        assert registry.get_sample_value("alert_receiver_group_commit_jobs_total", {"result": "committed"}) == 2
        assert registry.get_sample_value("alert_receiver_group_commit_batch_size_count") == 2
    finally:
        db.dispose()


@pytest.mark.postgres
def test_on_postgresql_one_bad_snapshot_fails_alone_and_leaves_no_row(sqlite_config, pg_template_url):
    """PostgreSQL's batch runs without a SAVEPOINT around it: a failure rolls the whole transaction back, and the
    jobs run again, each under its own SAVEPOINT. The good ones commit once, the bad one alone fails."""
    pg = create_db_engine(pg_template_url)
    empty_postgresql(pg)
    path = os.path.join(wire.socket_dir(), f"test-pg-writer-{os.getpid()}.sock")
    server = GroupCommitServer(pg, apply_or_fail, path, handle_many=apply_many_or_fail, weight=job_weight)
    assert server.bind()
    try:
        one_bad_among_two_good(sqlite_config, pg, server, ["00000000000000d1", "00000000000000d2"])
    finally:
        server.stop_listening()
        pg.dispose()


def test_a_failed_commit_answers_no_job_ok(sqlite_config, engine, server, monkeypatch):
    real = writer_server.write_transaction

    @contextlib.contextmanager
    def failing_commit(db):
        with real(db) as conn:
            yield conn
            conn.connection.driver_connection.rollback()
            raise sa.exc.OperationalError("COMMIT", None, Exception("disk I/O error"))

    monkeypatch.setattr(writer_server, "write_transaction", failing_commit)
    submitter = Submitter(server.path)
    for fp in ("00000000000000b1", "00000000000000b2"):
        submitter.submit(fp, job(sqlite_config, fp))
    queue_jobs(server, 2)
    server.run_batch()
    results = submitter.join()
    assert all(isinstance(r, StorageUnavailable) and is_unavailable(r) for r in results.values()), results
    assert not stored_fingerprints(engine)


def test_storage_trouble_in_one_job_fails_the_whole_batch_as_unavailable(sqlite_config, engine, monkeypatch):
    def locked(conn, job):
        raise sa.exc.OperationalError("INSERT", None, Exception("database is locked"))

    server = GroupCommitServer(engine, locked, socket_path(engine))
    assert server.bind()
    try:
        submitter = Submitter(server.path)
        submitter.submit("one", job(sqlite_config, "00000000000000c1"))
        queue_jobs(server, 1)
        server.run_batch()
        assert isinstance(submitter.join()["one"], StorageUnavailable)
    finally:
        server.stop_listening()


def test_a_job_queued_past_the_lock_timeout_is_refused_without_running(sqlite_config, engine, server):
    server.queue_timeout_s = 0.0
    submitter = Submitter(server.path)
    submitter.submit("late", job(sqlite_config, "00000000000000d1"))
    queue_jobs(server, 1)
    server.run_batch()
    assert isinstance(submitter.join()["late"], StorageUnavailable)
    assert server.stats["transactions"] == 0 and not stored_fingerprints(engine)


def test_batches_are_bounded_in_count(sqlite_config, engine, server):
    server.max_batch = 2
    submitter = Submitter(server.path)
    for i in range(5):
        submitter.submit(str(i), job(sqlite_config, f"00000000000000e{i}"))
    queue_jobs(server, 5)
    while server._queue:
        server.run_batch()
    assert len(submitter.join()) == 5
    assert server.stats["transactions"] == 3 and len(stored_fingerprints(engine)) == 5


def test_without_a_writer_the_client_says_so_and_the_port_writes_directly(sqlite_config, engine):
    assert GroupCommitClient(socket_path(engine)).submit(job(sqlite_config, "00000000000000f1")) is NOT_RUNNING
    assert open_writes(engine).submit(job(sqlite_config, "00000000000000f1")).outcomes["new"] == 1
    assert stored_fingerprints(engine) == {"00000000000000f1"}


def test_the_writer_command_is_for_sqlite_files_only(sqlite_config):
    argv = writer_argv(sqlite_config)
    assert argv[:3] == [sys.executable, "-m", "receiver.writer"]
    assert argv[argv.index("--database-url") + 1] == sqlite_config.database.url
    assert writer_argv(Config.model_validate({"database": {"url": "sqlite:///:memory:"}})) is None


@pytest.mark.postgres
def test_on_postgresql_each_serve_has_its_writer_and_big_webhooks_stay_in_the_worker(pg_template_url, monkeypatch):
    config = Config.model_validate({"database": {"url": pg_template_url}})
    engine = create_db_engine(pg_template_url)
    empty_postgresql(engine)
    monkeypatch.delenv(wire.WRITER_SOCKET_ENV, raising=False)
    try:
        # Outside serve (an in-process app, a CLI command): no writer; the process's threads group their writes.
        assert socket_path(engine) is None
        assert type(open_writes(engine)) is GroupWrites
        argv = writer_argv(config)
        path = argv[argv.index("--socket") + 1]
        assert argv[:3] == [sys.executable, "-m", "receiver.writer"] and path == wire.postgresql_socket_path()
        assert str(os.getpid()) in os.path.basename(path)  # one writer per serve, i.e. per replica
        monkeypatch.setenv(wire.WRITER_SOCKET_ENV, path)  # what serve hands its workers and its engine
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: proc.poll() is None and os.path.exists(path), timeout=30, what="the writer's socket")
            writes = open_writes(engine)
            assert type(writes) is GroupCommitWrites and type(writes.direct) is GroupWrites
            to_writer: list[int] = []
            submit = writes.client.submit
            writes.client.submit = lambda j: (to_writer.append(job_weight(j)), submit(j))[1]
            assert writes.submit(job(config, "00000000000000a1")).outcomes["new"] == 1
            many = json.loads(body("00000000000000b0"))
            many["alerts"] = [dict(many["alerts"][0], fingerprint=f"00000000000000b{i:x}",
                                   labels={**many["alerts"][0]["labels"], "n": str(i)}) for i in range(16)] + [
                dict(many["alerts"][0], fingerprint=f"00000000000000c{i:x}", labels={"alertname": "Big", "n": str(i)})
                for i in range(4)]
            raw = json.dumps(many).encode()
            big = IngestSnapshot(prepare(payload_mod.parse(raw), config=config, now=T0), raw)
            assert writes.submit(big).outcomes["new"] == 20
            assert to_writer == [2]  # the 1-alert webhook went to the writer; the 20-alert one was written here
            writes.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            out = proc.communicate(timeout=40)[0].decode()
        assert proc.returncode == 0, out
        assert "jobs=1 " in out, out  # the writer committed exactly the one job it was given
        assert len(stored_fingerprints(engine)) == 21
    finally:
        engine.dispose()


def test_the_socket_directory_must_be_private(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    with pytest.raises(wire.InsecureDirectory):
        wire.check_private(str(loose))
    client = GroupCommitClient(str(loose / "writer.sock"))
    assert client.submit("anything") is NOT_RUNNING  # never talks to a socket someone else could have planted


# --- the writer as a process, and the web view on top of it ----------------------------------------------------


@contextlib.contextmanager
def writer_process(config):
    path = socket_path(config.database.url[len("sqlite:///"):])
    proc = subprocess.Popen(writer_argv(config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: proc.poll() is None and os.path.exists(path), timeout=30, what="the writer's socket")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(40)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_the_webhook_view_goes_through_the_writer_and_falls_back_when_it_is_gone(sqlite_config, clock):
    app = create_app(sqlite_config, clock=clock, registry=CollectorRegistry())
    client = app.test_client()
    db = app.extensions["alert_receiver"].db
    headers = {"Content-Type": "application/json"}
    try:
        with writer_process(sqlite_config) as writer:
            r = client.post("/webhook", data=body("0000000000000101"), headers=headers)
            assert r.status_code == 200 and r.get_json()["new"] == 1
            writer.send_signal(signal.SIGTERM)
            out = writer.communicate(timeout=40)[0].decode()
        assert writer.returncode == 0
        assert "jobs=1 " in out, out  # it was the writer that committed it
        # No writer: the worker writes itself.
        r = client.post("/webhook", data=body("0000000000000102"), headers=headers)
        assert r.status_code == 200 and r.get_json()["new"] == 1
        assert stored_fingerprints(db) == {"0000000000000101", "0000000000000102"}
    finally:
        db.dispose()


def test_a_killed_writer_costs_its_in_flight_requests_a_503_and_nothing_else(sqlite_config, engine):
    """Killed while a job waits for its answer: that request gets 503 (unknown whether committed; the retry is
    harmless); the next one is written directly; a new writer takes over again."""
    path = socket_path(engine)
    stalled = GroupCommitServer(engine, lambda conn, job: job.run(conn), path)  # accepts and reads, never answers: as if it died mid-way
    assert stalled.bind()
    client = GroupCommitClient(path, reply_timeout_s=10)
    result = {}

    def send():
        try:
            result["r"] = client.submit(job(sqlite_config, "0000000000000201"))
        except Exception as exc:
            result["r"] = exc

    thread = threading.Thread(target=send)
    thread.start()
    queue_jobs(stalled, 1)
    for peer in list(stalled._peers):  # the kernel closes a killed process's sockets
        stalled._close(peer)
    stalled.stop_listening()
    thread.join(10)
    assert isinstance(result["r"], WriterLost) and is_unavailable(result["r"])
    assert client.submit(job(sqlite_config, "0000000000000202")) is NOT_RUNNING

    with writer_process(sqlite_config):
        assert client.submit(job(sqlite_config, "0000000000000203")).outcomes["new"] == 1
    assert stored_fingerprints(engine) == {"0000000000000203"}


# --- a batch written together is the same as each snapshot written alone ----------------------------------------


def snapshot(alerts: list[dict], group: str) -> bytes:
    return json.dumps({"version": "4", "receiver": "r", "status": "firing", "groupKey": group, "alerts": alerts}).encode()


def alert(fp: str, *, status: str = "firing", starts: str = "2026-11-23T08:00:00Z", ends: str = "0001-01-01T00:00:00Z",
          severity: str = "critical", summary: str = "s") -> dict:
    return {"status": status, "labels": {"alertname": "Batch", "severity": severity, "n": fp},
            "annotations": {"summary": summary}, "startsAt": starts, "endsAt": ends, "fingerprint": fp}


BATCH = [  # (body, seconds after T0)
    (snapshot([alert("0000000000000a01"), alert("0000000000000a02", severity="warning")], "g1"), 0),
    (snapshot([alert("0000000000000a01")], "g1"), 1),  # HA duplicate of the first, in the same batch
    (snapshot([alert("0000000000000a03", severity="nope")], "g2"), 2),  # unknown severity
    (snapshot([alert("0000000000000a02", status="resolved", ends="2026-11-23T08:30:00Z")], "g1"), 3),  # closes one
    (snapshot([alert("0000000000000a04", status="resolved", ends="2026-11-23T08:10:00Z")], "g3"), 4),  # new, resolved
    (snapshot([alert("0000000000000a01", summary="changed"), alert("0000000000000a05")], "g1"), 5),  # update + new
    (snapshot([], "g4"), 6),  # alerts: [] is a no-op, but the body is kept
    (snapshot([alert("0000000000000a01"), alert("0000000000000a02", severity="warning")], "g1"), 0),  # byte-identical retry
]


def history(engine) -> dict:
    with engine.connect() as conn:
        def rows(sql):
            return sorted(tuple(r) for r in conn.exec_driver_sql(sql))

        return {
            "alerts": rows("SELECT fingerprint, status, starts_at, ends_at, level, annotations, resolved_at, received_at, "
                           "updated_at FROM alerts"),
            "events": rows("SELECT a.fingerprint, e.kind, e.at, e.details FROM alert_events e JOIN alerts a ON a.id = e.alert_id"),
            "messages": rows("SELECT n.channel, n.kind, n.level, n.group_id, n.created_at, group_concat(a.fingerprint) "
                             "FROM notifications n JOIN notification_items i ON i.notification_id = n.id "
                             "JOIN alerts a ON a.id = i.alert_id GROUP BY n.id"),
            "bodies": rows("SELECT sha256, received_at, alert_count FROM webhook_bodies"),
        }


def test_a_batch_written_together_leaves_the_same_history_as_one_by_one(make_config, tmp_path, sqlite_template):
    config = make_config(channels={"pd": {"type": "pagerduty", "routing_key": "k"}},
                         routes=[{"levels": {"L1": ["log", "pd"], "L2": ["log"], "L3": ["log"]}}])
    jobs = [IngestSnapshot(prepare(payload_mod.parse(raw), config=config, now=T0 + dt.timedelta(seconds=at)), raw)
            for raw, at in BATCH]
    outcomes = {}
    for mode in ("alone", "together"):
        path = tmp_path / f"{mode}.db"
        shutil.copy(sqlite_template, path)
        engine = create_db_engine(f"sqlite:///{path}")
        with write_transaction(engine) as conn:
            if mode == "alone":  # as a worker without a writer does
                results = [j.run(conn) for j in jobs]
            else:  # as the writer does, with the snapshots in the form a worker sends them
                results = run_jobs(conn, [pickle.loads(pickle.dumps(j.for_writer())) for j in jobs])
        outcomes[mode] = ([dict(r.outcomes) for r in results], [dict(r.unknown_severities) for r in results],
                          [r.messages for r in results], [len(r.new_ids) for r in results],
                          [len(r.closed_ids) for r in results], history(engine))
        engine.dispose()
    assert outcomes["together"] == outcomes["alone"]
    per_snapshot = outcomes["alone"][0]
    assert per_snapshot[1] == {"duplicate": 1} and per_snapshot[3] == {"resolved": 1}
    assert per_snapshot[5] == {"updated": 1, "new": 1} and per_snapshot[4] == {"new_resolved": 1}


def test_an_answer_larger_than_the_socket_buffer_arrives_whole(engine):
    """Answers go out with one non-blocking send; one that does not fit the buffer is finished with a bounded wait."""
    server = GroupCommitServer(engine, lambda conn, job: job.run(conn), "/nonexistent/writer.sock")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ours.setblocking(False)
    peer = writer_server._Peer(ours)
    server._peers.add(peer)
    value = "x" * (4 << 20)
    received: list[object] = []

    def read() -> None:
        received.append(wire.recv_frame(theirs))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        server._answer(writer_server._Job(peer, object(), 0.0, 1, (wire.OK, value)))
    finally:
        reader.join(10)
        ours.close()
        theirs.close()
    assert received == [(wire.OK, value)]
    assert peer in server._peers  # still connected: the slow path did not give up on it


def test_a_writer_that_takes_the_job_and_never_answers_costs_a_writer_lost_after_the_reply_timeout(tmp_path):
    """The client's sockets block, with the reply timeout enforced by the kernel (SO_RCVTIMEO): a stalled writer
    still turns into a 503, not a request thread stuck for ever."""
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    path = str(directory / "writer.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    client = GroupCommitClient(path, reply_timeout_s=0.3)
    outcome: list[object] = []

    def submit() -> None:
        try:
            outcome.append(client.submit({"job": "never answered"}))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=submit)
    thread.start()
    accepted, _ = listener.accept()
    try:
        thread.join(10)
        assert not thread.is_alive(), "submit() is still waiting for an answer that never comes"
        [error] = outcome
        assert isinstance(error, WriterLost) and is_unavailable(error)
    finally:
        client.close()
        accepted.close()
        listener.close()
