"""Group commit among a process's threads (store/group_writes.py), on PostgreSQL and on a SQLite file: concurrent
jobs share a transaction and a COMMIT, each submitter gets its own result only after that COMMIT, a failing job
fails alone, a storage error fails its whole batch, every wait is bounded.

Which jobs share a batch is made deterministic with a Gate job: its submitter becomes the leader and holds its
transaction open until the test releases it, so everything submitted meanwhile waits and forms the next batch."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import time
from typing import ClassVar

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from receiver import payload as payload_mod
from receiver.config import Config
from receiver.engine.ingest import prepare
from receiver.engine.ingest_job import IngestSnapshot
from receiver.writer.client import open_writes
from receiver.store.db import StorageUnavailable, create_db_engine, is_unavailable
from receiver.store.group_writes import BatchUnavailable, GroupWrites
from receiver.store.write_port import DirectWrites

from ..conftest import T0
from ..support.process import wait_until
from .test_write_port import Note


@dataclasses.dataclass(frozen=True)
class BatchedNote(Note):
    batched: ClassVar[bool] = True
    calls: ClassVar[list[int]] = []

    @classmethod
    def run_many(cls, conn, jobs):
        cls.calls.append(len(jobs))
        conn.execute(sa.text("INSERT INTO notes (text, via) VALUES (:t, 'many')"), [{"t": j.text} for j in jobs])
        return [j.text.upper() for j in jobs]


@dataclasses.dataclass(frozen=True, eq=False)
class Gate:
    """Writes its row, then holds the transaction open until released."""

    text: str
    note: bool = True
    entered: threading.Event = dataclasses.field(default_factory=threading.Event)
    release: threading.Event = dataclasses.field(default_factory=threading.Event)

    def run(self, conn):
        if self.note:
            Note(self.text).run(conn)
        self.entered.set()
        assert self.release.wait(20)
        return self.text


@dataclasses.dataclass(frozen=True)
class Boom:
    text: str

    def run(self, conn):
        Note(self.text).run(conn)  # written first: the savepoint must undo it
        raise ValueError(f"planted {self.text}")


@dataclasses.dataclass(frozen=True)
class Orphan:
    """A row whose deferred foreign key fails only at COMMIT."""

    def run(self, conn):
        conn.execute(sa.text("INSERT INTO children (parent) VALUES (999)"))
        return "orphan"


class _Orig(Exception):
    def __init__(self, sqlstate):
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@dataclasses.dataclass(frozen=True, eq=False)
class Deadlocked:
    """Loses a deadlock the first time it runs (as PostgreSQL reports one), then writes."""

    text: str
    tries: list = dataclasses.field(default_factory=list)

    def run(self, conn):
        self.tries.append(1)
        Note(self.text).run(conn)
        if len(self.tries) == 1:
            raise OperationalError("UPDATE", None, _Orig("40P01"))
        return self.text


@pytest.fixture(scope="session")
def pg_scratch_url(pg_server):
    return pg_server.create_database("group_commit_tests")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp_path}/gc.db")
        serial = "INTEGER PRIMARY KEY"
    else:
        engine = create_db_engine(request.getfixturevalue("pg_scratch_url"))
        serial = "SERIAL PRIMARY KEY"
    with engine.begin() as conn:
        for table in ("children", "parents", "notes"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(sa.text(f"CREATE TABLE notes (id {serial}, text TEXT, via TEXT)"))
        conn.execute(sa.text("CREATE TABLE parents (id INTEGER PRIMARY KEY)"))
        conn.execute(sa.text("CREATE TABLE children (parent INTEGER REFERENCES parents (id) "
                             "DEFERRABLE INITIALLY DEFERRED)"))
    yield engine
    engine.dispose()


@pytest.fixture
def commits(engine):
    seen: list[int] = []
    event.listen(engine, "commit", lambda conn: seen.append(1))
    return seen


def rows(engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.text("SELECT text, via FROM notes")))


class Submitters:
    """Each job submitted from a thread of its own; outcomes collected by the job's position."""

    def __init__(self, writes: GroupWrites):
        self.writes = writes
        self.outcomes: dict[int, tuple[str, object]] = {}
        self.threads: list[threading.Thread] = []

    def start(self, *jobs, barrier: threading.Barrier | None = None) -> None:
        for job in jobs:
            k = len(self.threads)

            def submit(k=k, job=job):
                if barrier is not None:
                    barrier.wait(10)
                try:
                    self.outcomes[k] = ("ok", self.writes.submit(job))
                except Exception as exc:
                    self.outcomes[k] = ("error", exc)

            thread = threading.Thread(target=submit, daemon=True)
            self.threads.append(thread)
            thread.start()

    def join(self) -> list[tuple[str, object]]:
        for thread in self.threads:
            thread.join(30)
            assert not thread.is_alive(), "a submitter never got its answer"
        return [self.outcomes[k] for k in range(len(self.threads))]


def hold_the_lead(writes: GroupWrites, submitters: Submitters, text: str = "gate", note: bool = True) -> Gate:
    gate = Gate(text, note)
    submitters.start(gate)
    assert gate.entered.wait(10)
    return gate


def queued(writes: GroupWrites, n: int) -> None:
    wait_until(lambda: len(writes._queue) == n, timeout=10, what=f"{n} jobs queued")


def test_a_lone_job_commits_in_a_transaction_of_its_own(engine, commits):
    writes = GroupWrites(engine)
    assert writes.submit(Note("a")) == "a"
    assert rows(engine) == [("a", "run")] and len(commits) == 1
    with pytest.raises(ValueError, match="planted b"):
        writes.submit(Boom("b"))  # the job's own exception, as DirectWrites raises it
    assert rows(engine) == [("a", "run")] and len(commits) == 1
    assert writes.stats["transactions"] == 2 and writes._leading is False


def test_concurrent_jobs_share_one_transaction_and_one_statement_per_kind(engine, commits):
    BatchedNote.calls.clear()
    writes = GroupWrites(engine)
    subs = Submitters(writes)
    gate = hold_the_lead(writes, subs)
    texts = [f"n{k}" for k in range(20)]
    subs.start(*[BatchedNote(t) for t in texts], Note("plain"))
    queued(writes, 21)
    gate.release.set()
    outcomes = subs.join()
    assert outcomes == [("ok", "gate"), *[("ok", t.upper()) for t in texts], ("ok", "plain")]
    assert BatchedNote.calls == [20]  # one run_many for the twenty
    assert len(commits) == 2 and writes.stats["transactions"] == 2 and writes.stats["jobs"] == 22
    assert rows(engine) == sorted([("gate", "run"), ("plain", "run"), *[(t, "many") for t in texts]])


def test_batches_are_bounded_in_count(engine, commits):
    writes = GroupWrites(engine, max_batch=4)
    subs = Submitters(writes)
    gate = hold_the_lead(writes, subs)
    subs.start(*[Note(f"n{k}") for k in range(10)])
    queued(writes, 10)
    gate.release.set()
    assert [value for _, value in subs.join()] == ["gate", *[f"n{k}" for k in range(10)]]
    assert len(commits) == 1 + 3  # 4 + 4 + 2


def test_a_job_that_raises_fails_alone_and_the_others_commit(engine, commits):
    writes = GroupWrites(engine)
    subs = Submitters(writes)
    gate = hold_the_lead(writes, subs)
    subs.start(Note("a"), Boom("bad"), BatchedNote("b"), BatchedNote("c"))
    queued(writes, 4)
    gate.release.set()
    outcomes = subs.join()
    assert outcomes[0] == ("ok", "gate") and outcomes[1] == ("ok", "a")
    assert outcomes[2][0] == "error" and str(outcomes[2][1]) == "planted bad"
    assert outcomes[3:] == [("ok", "b"), ("ok", "c")]  # one by one now: run, not run_many
    assert rows(engine) == [("a", "run"), ("b", "run"), ("c", "run"), ("gate", "run")]  # nothing of "bad"
    assert len(commits) == 2  # the gate's; the batch's first try rolled back, its second committed


def test_a_storage_error_fails_the_whole_batch(engine, commits):
    class Outage:
        def run(self, conn):
            raise StorageUnavailable("planted outage")

    writes = GroupWrites(engine)
    subs = Submitters(writes)
    gate = hold_the_lead(writes, subs)
    subs.start(Note("a"), Outage(), Note("b"))
    queued(writes, 3)
    gate.release.set()
    outcomes = subs.join()
    assert outcomes[0] == ("ok", "gate")
    errors = [value for _, value in outcomes[1:]]
    assert all(isinstance(e, BatchUnavailable) and is_unavailable(e) for e in errors)
    assert len({id(e) for e in errors}) == 3  # each submitter raises its own exception
    assert rows(engine) == [("gate", "run")]  # nothing of the batch
    assert writes.stats["failed"] == 3


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)  # statement_timeout is PostgreSQL's
def test_a_database_statement_timeout_fails_the_whole_batch(engine, commits):

    class Slow:
        def run(self, conn):
            conn.exec_driver_sql("SET LOCAL statement_timeout = 50")
            conn.exec_driver_sql("SELECT pg_sleep(2)")

    writes = GroupWrites(engine)
    subs = Submitters(writes)
    gate = hold_the_lead(writes, subs)
    subs.start(Note("a"), Slow(), Note("b"))
    queued(writes, 3)
    gate.release.set()
    outcomes = subs.join()
    assert all(kind == "error" and is_unavailable(value) for kind, value in outcomes[1:])
    assert {value.__cause__.orig.sqlstate for _, value in outcomes[1:]} == {"57014"}  # query_canceled
    assert rows(engine) == [("gate", "run")]


def test_no_result_before_commit_a_batch_whose_commit_fails_reports_no_success(engine, commits):
    writes = GroupWrites(engine)
    subs = Submitters(writes)
    gate = hold_the_lead(writes, subs)
    subs.start(Note("a"), Orphan(), Note("b"))
    queued(writes, 3)
    gate.release.set()
    outcomes = subs.join()
    assert outcomes[0] == ("ok", "gate")
    assert [kind for kind, _ in outcomes[1:]] == ["error"] * 3  # every statement ran; the COMMIT refused them
    assert all(isinstance(value, sa.exc.IntegrityError) for _, value in outcomes[1:])
    assert rows(engine) == [("gate", "run")]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM children")).scalar() == 0


def test_results_are_handed_out_only_after_commit_returned(engine):
    writes = GroupWrites(engine)
    order: list[str] = []
    event.listen(engine, "commit", lambda conn: order.append("commit"))

    class Recording(Note):
        pass

    subs = Submitters(writes)
    gate = hold_the_lead(writes, subs)
    original = writes._finish

    def finish(pending, value=None, error=None):
        order.append("answer")
        original(pending, value, error)

    writes._finish = finish
    subs.start(*[Recording(f"r{k}") for k in range(5)])
    queued(writes, 5)
    gate.release.set()
    subs.join()
    assert order == ["commit", "answer", "commit", *["answer"] * 5]


def test_a_deadlock_with_another_writer_runs_the_batch_again(engine, commits):
    writes = GroupWrites(engine)
    subs = Submitters(writes)
    gate = hold_the_lead(writes, subs)
    loser = Deadlocked("d")
    subs.start(Note("a"), loser)
    queued(writes, 2)
    gate.release.set()
    assert subs.join() == [("ok", "gate"), ("ok", "a"), ("ok", "d")]
    assert len(loser.tries) == 2 and writes.stats["retried"] == 1
    assert rows(engine) == [("a", "run"), ("d", "run"), ("gate", "run")]  # once each


def test_a_job_that_submits_fails_at_once_instead_of_waiting_for_itself(engine):
    writes = GroupWrites(engine)

    class Nested:
        def run(self, conn):
            return writes.submit(Note("inner"))

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="submitted another job"):
        writes.submit(Nested())
    assert time.monotonic() - started < 2
    assert writes.submit(Note("after")) == "after"  # the port is not left stuck
    assert rows(engine) == [("after", "run")]


def test_a_job_not_started_in_time_is_withdrawn_and_never_runs(engine):
    writes = GroupWrites(engine, queue_timeout_s=0.3)
    subs = Submitters(writes)
    gate = hold_the_lead(writes, subs)
    subs.start(Note("late"))
    queued(writes, 1)
    subs.threads[1].join(5)
    kind, error = subs.outcomes[1]
    assert kind == "error" and isinstance(error, StorageUnavailable) and "overloaded" in str(error)
    assert writes._queue == []
    gate.release.set()
    subs.join()
    assert rows(engine) == [("gate", "run")]  # "late" was never written: the 503 was exact


def test_a_submitter_stops_waiting_for_a_batch_that_does_not_answer(engine):
    writes = GroupWrites(engine, queue_timeout_s=10, reply_timeout_s=0.5)
    subs = Submitters(writes)
    gate = hold_the_lead(writes, subs)
    stuck = Gate("stuck")
    subs.start(stuck)
    queued(writes, 1)
    subs.start(Note("rider"))
    queued(writes, 2)
    gate.release.set()  # the next leader takes [stuck, rider] and stays inside `stuck`
    assert stuck.entered.wait(10)
    subs.threads[2].join(5)
    kind, error = subs.outcomes[2]
    assert kind == "error" and isinstance(error, StorageUnavailable) and "unknown" in str(error)
    stuck.release.set()
    outcomes = subs.join()
    assert outcomes[1] == ("ok", "stuck")
    assert rows(engine) == [("gate", "run"), ("rider", "run"), ("stuck", "run")]  # committed after all: "unknown"


def test_close_drains_what_can_run_and_fails_the_rest_clearly(engine):
    writes = GroupWrites(engine, drain_s=0.3)
    subs = Submitters(writes)
    gate = hold_the_lead(writes, subs)
    subs.start(Note("queued"))
    queued(writes, 1)
    writes.close()  # the leader is stuck in the gate: the queued job cannot run in time
    subs.threads[1].join(5)
    kind, error = subs.outcomes[1]
    assert kind == "error" and isinstance(error, StorageUnavailable) and "closed" in str(error)
    gate.release.set()
    assert subs.join()[0] == ("ok", "gate")
    assert writes._leading is False
    assert writes.submit(Note("straggler")) == "straggler"  # after close: directly
    assert rows(engine) == [("gate", "run"), ("straggler", "run")]


def test_many_threads_at_random_all_answered_correctly(engine, commits):
    writes = GroupWrites(engine)
    subs = Submitters(writes)
    subs.start(*[BatchedNote(f"t{k}") if k % 5 else Boom(f"x{k}") for k in range(16)], barrier=threading.Barrier(16))
    subs.join()
    expected_ok = {f"t{k}" for k in range(16) if k % 5}
    outcomes = subs.outcomes
    # A BatchedNote run in a batch of its kind answers upper case (run_many), alone lower case (run): either is right.
    assert {v.lower() for kind, v in outcomes.values() if kind == "ok"} == expected_ok
    assert sorted(str(v) for kind, v in outcomes.values() if kind == "error") == sorted(
        f"planted x{k}" for k in range(16) if k % 5 == 0)
    assert sorted(text for text, _ in rows(engine)) == sorted(expected_ok)
    assert len(commits) <= writes.stats["transactions"] <= 16  # a lone failing job's transaction never commits
    assert writes.stats["jobs"] == 16
    assert writes._leading is False and writes._queue == []


# --- the webhook's job on PostgreSQL -------------------------------------------------------------


def body(fingerprint: str, status: str = "firing") -> bytes:
    return json.dumps({
        "version": "4", "receiver": "r", "status": status, "groupKey": f'{{}}:{{g="{fingerprint}"}}',
        "alerts": [{"status": status, "labels": {"alertname": "Grouped", "severity": "critical", "n": fingerprint},
                    "annotations": {"summary": fingerprint}, "startsAt": "2026-11-23T08:00:00Z",
                    "endsAt": "2026-11-23T08:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
                    "fingerprint": fingerprint}],
    }).encode()


def snapshot_jobs(config) -> list[IngestSnapshot]:
    """Twelve new alerts, one of them resolved in the same batch, and a repeat of another."""
    raws = [body(f"{k:016x}") for k in range(12)] + [body(f"{3:016x}", "resolved"), body(f"{5:016x}")]
    return [IngestSnapshot.of(prepare(payload_mod.parse(raw), config=config, now=T0), raw) for raw in raws]


def alert_rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.text(
            "SELECT fingerprint, status, (SELECT count(*) FROM alert_events e WHERE e.alert_id = alerts.id) "
            "FROM alerts")))


def test_webhooks_on_postgresql_share_a_commit_with_the_results_of_one_by_one(pg_template_url, sqlite_template,
                                                                                tmp_path):
    config = Config.model_validate({"database": {"url": pg_template_url}})
    pg = create_db_engine(pg_template_url)
    with pg.begin() as conn:
        from receiver.store.models import Base
        conn.execute(sa.text("TRUNCATE " + ", ".join(t.name for t in Base.metadata.sorted_tables)
                             + " RESTART IDENTITY CASCADE"))
    writes = open_writes(pg)
    assert type(writes) is GroupWrites
    seen: list[int] = []
    event.listen(pg, "commit", lambda conn: seen.append(1))
    jobs = snapshot_jobs(config)
    subs = Submitters(writes)
    gate = hold_the_lead(writes, subs, note=False)
    subs.start(*jobs)
    queued(writes, len(jobs))
    gate.release.set()
    outcomes = subs.join()
    assert [kind for kind, _ in outcomes] == ["ok"] * (1 + len(jobs))
    batched = [value for _, value in outcomes[1:]]
    assert len(seen) == 2  # the gate's, and one COMMIT for the fourteen webhooks

    path = tmp_path / "reference.db"
    shutil.copy(sqlite_template, path)
    reference = create_db_engine(f"sqlite:///{path}")
    direct = DirectWrites(reference)
    one_by_one = [direct.submit(job) for job in jobs]
    assert [dict(r.outcomes) for r in batched] == [dict(r.outcomes) for r in one_by_one]
    assert alert_rows(pg) == alert_rows(reference)
    assert [len(r.new_ids) for r in batched] == [1] * 12 + [0, 0]
    pg.dispose()
    reference.dispose()


def test_postgresqls_group_commit_can_be_turned_off_to_measure_it(pg_template_url, monkeypatch):
    engine = create_db_engine(pg_template_url)
    try:
        assert type(open_writes(engine)) is GroupWrites
        monkeypatch.setenv("ALERT_RECEIVER_PG_GROUP_COMMIT", "0")
        assert type(open_writes(engine)) is DirectWrites
    finally:
        engine.dispose()
