"""On PostgreSQL the bulk INSERTs are prepared once per connection and nothing else ever is: a SELECT's generic
plan made on a young table would stick (test_pg_plans_without_statistics.py). `database.prepared_statements: false`
(a PgBouncer that drops them) prepares nothing, in the writer process too."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from receiver.config import Config
from receiver.store import migrate
from receiver.store.alerts import fetch_state
from receiver.store.db import create_db_engine
from receiver.store.webhooks import keep_bodies
from receiver.writer.main import writer_argv

from ..conftest import T0

pytestmark = pytest.mark.postgres

_numbers = itertools.count()


def _prepared_after_use(url: str, *, prepared_statements: bool) -> list[str]:
    """What one connection has prepared after three batches of webhook bodies and three state lookups."""
    engine = create_db_engine(url, prepared_statements=prepared_statements, pool_size=1)
    try:
        with engine.begin() as conn:
            for n in range(3):
                keep_bodies(conn, [dict(body=f'{{"n": {n}}}'.encode(), source="am", now=T0, alert_count=1,
                                        truncated_alerts=0)])
                fetch_state(conn, [f"{n:016x}"])
            return [s for (s,) in conn.execute(sa.text("SELECT statement FROM pg_prepared_statements"))]
    finally:
        engine.dispose()


@pytest.fixture
def url(pg_server):
    url = pg_server.create_database(f"prepared_{next(_numbers)}")
    engine = create_db_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def test_the_bulk_insert_is_prepared_once_and_no_select_ever(url):
    prepared = _prepared_after_use(url, prepared_statements=True)
    assert len(prepared) == 1 and prepared[0].startswith("INSERT INTO webhook_bodies"), prepared


def test_prepared_statements_off_prepares_nothing(url):
    assert _prepared_after_use(url, prepared_statements=False) == []


def test_the_writer_process_is_told_to_prepare_nothing_when_they_are_off(monkeypatch):
    monkeypatch.delenv("ALERT_RECEIVER_PG_WRITER", raising=False)
    url = "postgresql+psycopg://receiver@127.0.0.1:5432/alerts"
    on = writer_argv(Config.model_validate({"database": {"url": url}}))
    off = writer_argv(Config.model_validate({"database": {"url": url, "prepared_statements": False}}))
    assert "--no-prepared-statements" not in on and "--no-prepared-statements" in off
