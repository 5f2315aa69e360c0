"""`alert-receiver routes test` says whether an alert with these labels would be muted now (or --at): by the first
route's time intervals, and by the maintenance windows stored in the configured database (SQLite and PostgreSQL),
which it reads without writing."""

from __future__ import annotations

import datetime as dt

from click.testing import CliRunner

from receiver.cli import main
from receiver.store import maintenance
from receiver.store.db import create_db_engine

UTC = dt.timezone.utc
INTERVALS = {"nights": [{"times": [{"start_time": "00:00", "end_time": "06:00"}], "location": "Europe/Berlin"}]}
ROUTES = [{"matchers": ['team="db"'], "mute_time_intervals": ["nights"]}, {"levels": {"L1": ["log"]}}]


def routes_test(path: str, labels: str, at: str) -> list[str]:
    result = CliRunner().invoke(main, ["routes", "test", "-c", path, "--labels", labels, "--at", at])
    assert result.exit_code == 0, result.output
    return [line for line in result.stdout.splitlines() if line.startswith("muted:")]


def test_time_intervals_and_maintenance_windows(make_config):
    config = make_config(time_intervals=INTERVALS, routes=ROUTES)
    engine = create_db_engine(config.database.url)
    with engine.begin() as conn:
        window = maintenance.create(conn, matchers=['team="db"', 'env="prod"'],
                                    start=dt.datetime(2026, 11, 23, 22, tzinfo=UTC),
                                    end=dt.datetime(2026, 11, 24, 8, tzinfo=UTC), comment="", now=dt.datetime(
                                        2026, 11, 20, tzinfo=UTC), actor="erin")
    engine.dispose()
    night = "2026-11-23T23:30:00Z"  # 00:30 in Berlin, and inside the window
    assert routes_test(config.source, 'team="db",env="prod"', night) == [
        "muted: by time interval nights until 2026-11-24T05:00:00Z",
        f"muted: by maintenance window #{window.id} until 2026-11-24T08:00:00Z"]
    assert routes_test(config.source, 'team="db",env="dev"', night) == [
        "muted: by time interval nights until 2026-11-24T05:00:00Z"]
    assert routes_test(config.source, 'team="web",env="prod"', night) == []  # the default route: no intervals
    assert routes_test(config.source, 'team="db",env="prod"', "2026-11-24T06:00:00Z") == [
        f"muted: by maintenance window #{window.id} until 2026-11-24T08:00:00Z"]
    assert routes_test(config.source, 'team="db",env="prod"', "2026-11-24T09:00:00Z") == []


def test_no_database_yet_means_no_window(tmp_path):
    path = tmp_path / "receiver.yml"
    path.write_text(f"""
database: {{url: "sqlite:///{tmp_path}/absent/receiver.db"}}
time_intervals: {{all-day: [{{}}]}}
routes: [{{levels: {{L1: [log]}}, active_time_intervals: [all-day]}}]
""")
    result = CliRunner().invoke(main, ["routes", "test", "-c", str(path), "--labels", 'a="b"',
                                       "--at", "2026-11-23T09:00:00Z"])
    assert result.exit_code == 0 and "muted" not in result.output and result.stderr == ""
    assert not (tmp_path / "absent").exists()
    bad = CliRunner().invoke(main, ["routes", "test", "-c", str(path), "--labels", 'a="b"', "--at", "soon"])
    assert bad.exit_code == 2 and "--at" in bad.output
