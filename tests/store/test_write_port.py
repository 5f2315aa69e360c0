"""The write port's plain implementation and its batching of jobs: results in the jobs' order, a kind that can
batch written with one run_many, a job's exception rolling back the whole transaction."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest
import sqlalchemy as sa

from receiver.store.db import create_db_engine
from receiver.store.write_port import DirectWrites, job_weight, run_jobs


@dataclasses.dataclass(frozen=True)
class Note:
    """A job that writes one row of its own table and returns its text."""

    text: str

    def run(self, conn):
        conn.execute(sa.text("INSERT INTO notes (text, via) VALUES (:t, 'run')"), {"t": self.text})
        return self.text


@dataclasses.dataclass(frozen=True)
class BatchedNote(Note):
    batched: ClassVar[bool] = True
    calls: ClassVar[list[int]] = []

    @property
    def weight(self) -> int:
        return len(self.text)

    @classmethod
    def run_many(cls, conn, jobs):
        cls.calls.append(len(jobs))
        conn.execute(sa.text("INSERT INTO notes (text, via) VALUES (:t, 'many')"), [{"t": j.text} for j in jobs])
        return [j.text.upper() for j in jobs]


class Boom:
    def run(self, conn):
        conn.execute(sa.text("INSERT INTO notes (text, via) VALUES ('boom', 'run')"))
        raise ValueError("planted")


@pytest.fixture
def engine(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path}/port.db")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE notes (text TEXT, via TEXT)"))
    yield engine
    engine.dispose()


def rows(engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT text, via FROM notes ORDER BY rowid"))]


def test_direct_writes_commit_each_job_and_return_its_result(engine):
    writes = DirectWrites(engine)
    assert writes.submit(Note("a")) == "a"
    assert rows(engine) == [("a", "run")]  # another connection sees it: committed


def test_a_job_that_raises_leaves_nothing_behind(engine):
    writes = DirectWrites(engine)
    with pytest.raises(ValueError, match="planted"):
        writes.submit(Boom())
    with pytest.raises(ValueError, match="planted"):
        with writes.transaction() as conn:
            Note("before").run(conn)
            Boom().run(conn)
    assert rows(engine) == []


def test_run_jobs_batches_each_kind_that_can_and_answers_in_the_jobs_order(engine):
    BatchedNote.calls.clear()
    jobs = [BatchedNote("x"), Note("a"), BatchedNote("yy"), Note("b"), BatchedNote("zzz")]
    with DirectWrites(engine).transaction() as conn:
        assert run_jobs(conn, jobs) == ["X", "a", "YY", "b", "ZZZ"]
    assert BatchedNote.calls == [3]  # one call for the three
    assert sorted(rows(engine)) == [("a", "run"), ("b", "run"), ("x", "many"), ("yy", "many"), ("zzz", "many")]
    assert [job_weight(j) for j in jobs] == [1, 1, 2, 1, 3]


def test_a_lone_job_of_a_batching_kind_runs_on_its_own(engine):
    BatchedNote.calls.clear()
    with DirectWrites(engine).transaction() as conn:
        assert run_jobs(conn, [BatchedNote("q")]) == ["q"]
    assert BatchedNote.calls == [] and rows(engine) == [("q", "run")]
