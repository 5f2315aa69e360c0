"""Shared fixtures: a database per test on SQLite and on a real PostgreSQL server, configs, apps, clients."""

from __future__ import annotations

import datetime as dt
import os
import shutil

import pytest
import sqlalchemy as sa
import yaml
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.clock import FixedClock
from receiver.config import load_config
from receiver.store import migrate
from receiver.store.db import create_db_engine
from receiver.store.models import Base

from .faults.report import pytest_runtest_logreport, pytest_terminal_summary  # noqa: F401  (fault tests' counts)
from .support.fixtures import TOKEN
from .support.postgres import PostgresServer
from .support.sink import HttpSink

T0 = dt.datetime(2026, 11, 23, 9, 0, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def pg_template_url(pg_server):
    """One migrated database per test session (per xdist worker); tests truncate it."""
    url = pg_server.create_database("receiver_tests")
    engine = create_db_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = create_db_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A migrated, empty database: every test using it runs on both backends."""
    if request.param == "sqlite":
        path = tmp_path / "receiver.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_template_url")
    engine = create_db_engine(url)
    with engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def make_config(tmp_path, db_url):
    """make_config(**sections) → Config loaded from a real receiver.yml, on this test's database."""

    def make(**sections):
        data = {"database": {"url": db_url, "lock_timeout": "2s"}}
        for key, value in sections.items():
            data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
        path = tmp_path / f"receiver-{len(list(tmp_path.glob('receiver-*.yml')))}.yml"
        path.write_text(yaml.safe_dump(data))
        return load_config(path, env={})

    return make


@pytest.fixture
def clock():
    return FixedClock(T0)


@pytest.fixture
def config(make_config):
    return make_config()


@pytest.fixture
def app(config, clock):
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    yield app
    app.extensions["alert_receiver"].writes.close()
    app.extensions["alert_receiver"].db.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app):
    return app.extensions["alert_receiver"].db


@pytest.fixture
def writes(app):
    """The app's write port: what the engine functions take to write."""
    return app.extensions["alert_receiver"].writes


@pytest.fixture
def auth_config(make_config):
    return make_config(auth={"tokens": [
        {"name": "alertmanager", "token": TOKEN, "role": "webhook"},
        {"name": "analysts", "token": "read-token-0123", "role": "read"},
        {"name": "admin", "token": "admin-token-4567", "role": "admin"},
    ]})


def table_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in Base.metadata.sorted_tables}


def is_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
def sink():
    """A local HTTP endpoint that records what channels deliver to it (tests/support/sink.py)."""
    s = HttpSink().start()
    yield s
    s.stop()
