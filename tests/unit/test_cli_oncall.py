"""`alert-receiver oncall`: one line per schedule, or the API's JSON; the same person and `until` as GET
/api/v1/oncall for the same moment; an unknown schedule or a bad --at is a usage error naming it. A database that
does not exist yet or was never migrated holds no override (stderr says so); one that cannot be read is an error.
With overrides: tests/web/test_oncall_agreement.py."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.cli import main
from receiver.clock import FixedClock
from receiver.config import load_config
from receiver.store import migrate
from receiver.store.db import create_db_engine

PEOPLE = {"alice": {"email": "alice@example.org"}, "bob": {}}
SCHEDULES = {
    "primary-db": {"timezone": "Europe/Berlin", "rotations": [
        {"participants": ["alice", "bob"], "length": "1w", "handoff": "mon 09:00", "start": "2026-01-05"}]},
    "later": {"rotations": [{"participants": ["bob"], "length": "1d", "start": "2026-02-02"}]},
}


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "receiver.yml"
    # No database is created: the URL names a directory that does not exist.
    path.write_text(yaml.safe_dump({"database": {"url": f"sqlite:///{tmp_path}/absent/receiver.db"},
                                    "people": PEOPLE, "schedules": SCHEDULES}))
    return str(path)


@pytest.fixture
def run(config_path):
    def invoke(*args, env=None):
        return CliRunner().invoke(main, ["oncall", *args], env={"RECEIVER_CONFIG": config_path, **(env or {})})

    return invoke


def test_one_line_per_schedule_by_name(run, tmp_path):
    result = run("--at", "2026-01-05T08:30:00Z")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "later: nobody on shift until 2026-02-02T00:00:00Z",
        "primary-db: alice until 2026-01-12T08:00:00Z (rotation)",
    ]
    assert result.stderr == (f"note: no database at {tmp_path}/absent/receiver.db yet; "
                             "answering from the rotations alone\n")
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize("at, expected", [
    ("2026-01-05T08:30:00Z", "primary-db: alice until 2026-01-12T08:00:00Z (rotation)"),
    ("2026-01-12T08:30:00Z", "primary-db: bob until 2026-01-19T08:00:00Z (rotation)"),
    ("1768206600", "primary-db: bob until 2026-01-19T08:00:00Z (rotation)"),  # Unix seconds: 2026-01-12T08:30Z
])
def test_one_schedule(run, at, expected):
    result = run("--schedule", "primary-db", "--at", at)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [expected]


def test_the_config_option_and_now_by_default(config_path):
    result = CliRunner().invoke(main, ["oncall", "-c", config_path, "--schedule", "primary-db"],
                                env={"RECEIVER_CONFIG": None})
    assert result.exit_code == 0, result.output
    # Whoever it is now, the line names one of the rotation and when the shift ends.
    assert result.stdout.startswith(("primary-db: alice until ", "primary-db: bob until "))


@pytest.mark.parametrize("at", ["2026-01-05T08:30:00Z", "2026-01-12T08:30:00Z", "2026-03-30T06:59:59Z",
                                "2026-01-01T00:00:00Z"])
def test_json_is_the_apis_answer_for_the_same_moment(run, config_path, tmp_path, at):
    (tmp_path / "absent").mkdir()
    engine = create_db_engine(f"sqlite:///{tmp_path}/absent/receiver.db")
    migrate.upgrade(engine)  # the app reads overrides (none here); the CLI then reads the same database
    engine.dispose()
    clock = FixedClock(dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))  # never used: `at` is given
    app = create_app(load_config(config_path, env={}), clock=clock, registry=CollectorRegistry())
    try:
        client = app.test_client()
        for query, args in (({"at": at}, ["--at", at]),
                            ({"at": at, "schedule": "primary-db"}, ["--at", at, "--schedule", "primary-db"])):
            api = client.get("/api/v1/oncall", query_string=query).get_json()
            result = run(*args, "--json")
            assert result.exit_code == 0, result.output
            assert json.loads(result.stdout) == api and result.stderr == ""
            # and the line says the same person and until
            entry = api if "schedule" in query else api["oncall"][1]
            text = run(*args).stdout.splitlines()[-1]
            assert text.startswith(f"primary-db: {entry['person'] or 'nobody on shift'}")
            assert (entry["until"] or "") in text
    finally:
        app.extensions["alert_receiver"].db.dispose()


def test_an_unknown_schedule_is_an_error_naming_it(run):
    result = run("--schedule", "secondary-db", "--at", "2026-01-05T08:30:00Z")
    assert result.exit_code == 2
    assert "secondary-db" in result.output and "primary-db" in result.output  # what there is, too


def test_a_bad_at_is_an_error_naming_it(run):
    result = run("--at", "next monday")
    assert result.exit_code == 2 and "--at" in result.output and "next monday" in result.output


def test_no_schedules(tmp_path):
    path = tmp_path / "empty.yml"
    path.write_text(yaml.safe_dump({"database": {"url": f"sqlite:///{tmp_path}/r.db"}}))
    result = CliRunner().invoke(main, ["oncall", "-c", str(path)])
    assert result.exit_code == 0 and result.output == "no schedules in receiver.yml\n"
    result = CliRunner().invoke(main, ["oncall", "-c", str(path), "--json", "--at", "2026-01-05T08:30:00Z"])
    assert json.loads(result.output) == {"at": "2026-01-05T08:30:00Z", "oncall": []}


def write_config(tmp_path, url: str) -> str:
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump({"database": {"url": url, "lock_timeout": "1s"}, "people": PEOPLE,
                                    "schedules": SCHEDULES}))
    return str(path)


def test_a_database_never_migrated_holds_no_override_and_is_left_as_it_was(tmp_path):
    folder = tmp_path / "with space"
    folder.mkdir()
    database = folder / "receiver.db"
    database.write_bytes(b"")  # an empty file is an empty SQLite database
    path = write_config(tmp_path, f"sqlite:///{database}")
    result = CliRunner().invoke(main, ["oncall", "-c", path, "--schedule", "primary-db", "--at",
                                       "2026-01-05T08:30:00Z"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "primary-db: alice until 2026-01-12T08:00:00Z (rotation)\n"
    assert "has no schedule_overrides table (not migrated: `alert-receiver migrate`); answering from the rotations alone" \
        in result.stderr
    assert database.read_bytes() == b""  # opened read only: no table, no journal mode written


@pytest.mark.parametrize("url, names", [
    ("postgresql://oncall:s3cret-pw@127.0.0.1:1/receiver", "postgresql://***@127.0.0.1:1/receiver"),
    ("sqlite:///{tmp}/garbage.db", "garbage.db"),
])
def test_a_database_that_cannot_be_read_is_an_error_not_a_guess(tmp_path, url, names):
    (tmp_path / "garbage.db").write_bytes(b"this is not a database, " * 100)
    path = write_config(tmp_path, url.format(tmp=tmp_path))
    result = CliRunner().invoke(main, ["oncall", "-c", path, "--at", "2026-01-05T08:30:00Z"])
    assert result.exit_code == 1, result.output
    assert "cannot read the schedule overrides from" in result.stderr and names in result.stderr
    assert "may put someone else on call" in result.stderr and result.stdout == ""
    assert "s3cret-pw" not in result.output
