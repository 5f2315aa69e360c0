"""`alert-receiver routes test` for an on-call route says, for a moment (--at): who each schedule or person target
would page (overrides stored in the configured database included, SQLite and PostgreSQL), the SLA targets of the
route, and any mute — everything a person checking a route before a night on call wants to see at once."""

from __future__ import annotations

import datetime as dt

from click.testing import CliRunner

from receiver.cli import main
from receiver.store import schedule_overrides
from receiver.store.db import create_db_engine

UTC = dt.timezone.utc
PEOPLE = {"alice": {"email": "alice@example.org", "phone": "+4915550001"},
          "bob": {"email": "bob@example.org", "phone": "+4915550002"},
          "carol": {"email": "carol@example.org", "phone": "+4915550003"}}
SCHEDULES = {"primary-db": {"timezone": "Europe/Berlin", "rotations": [
    {"participants": ["alice", "bob"], "length": "1w", "handoff": "mon 09:00", "start": "2026-01-05"}]}}
CHANNELS = {"sms-oncall": {"type": "twilio_sms", "account_sid": "AC1", "auth_token": "t", "from": "+15550000000"},
            "email-oncall": {"type": "email", "smtp_host": "smtp.example.org", "from": "alerts@example.org"}}
ROUTES = [{"matchers": ['team="db"'], "mute_time_intervals": ["sundays"],
           "levels": {"L1": [{"schedule": "primary-db", "via": ["sms-oncall", "email-oncall"]}, "log"],
                      "L2": [{"person": "carol", "via": ["email-oncall"]}], "L3": ["log"]}},
          {"levels": {"L1": ["log"], "L2": ["log"], "L3": ["log"]}}]
INTERVALS = {"sundays": [{"weekdays": ["sunday"], "location": "Europe/Berlin"}]}


def routes_test(path: str, at: str) -> list[str]:
    result = CliRunner().invoke(main, ["routes", "test", "-c", path, "--labels", 'team="db",severity="critical"',
                                       "--at", at])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_the_person_paged_the_sla_and_the_mute_at_a_moment(make_config):
    config = make_config(people=PEOPLE, schedules=SCHEDULES, channels=CHANNELS, routes=ROUTES,
                         time_intervals=INTERVALS)
    engine = create_db_engine(config.database.url)
    with engine.begin() as conn:
        made = schedule_overrides.create(conn, schedule="primary-db", person="carol",
                                         start=dt.datetime(2026, 11, 25, 18, tzinfo=UTC),
                                         end=dt.datetime(2026, 11, 26, 6, tzinfo=UTC),
                                         now=dt.datetime(2026, 11, 20, tzinfo=UTC), actor="erin")
    engine.dispose()
    assert made.person == "carol"

    tuesday = routes_test(config.source, "2026-11-24T12:00:00Z")  # alice's week (from Monday 2026-11-23 09:00 Berlin)
    assert "L1 pages schedule:primary-db → alice until 2026-11-25T18:00:00Z (rotation) via sms-oncall, email-oncall" \
        in tuesday
    assert "L2 pages person:carol → carol (person) via email-oncall" in tuesday
    assert any(line.startswith("sla: ") and "L1" in line for line in tuesday)
    assert not any(line.startswith("muted:") for line in tuesday)

    night = routes_test(config.source, "2026-11-25T23:00:00Z")  # inside the override
    assert "L1 pages schedule:primary-db → carol until 2026-11-26T06:00:00Z (override) via sms-oncall, email-oncall" \
        in night

    sunday = routes_test(config.source, "2026-11-29T12:00:00Z")
    assert "muted: by time interval sundays until 2026-11-29T23:00:00Z" in sunday
    assert "L1 pages schedule:primary-db → alice until 2026-11-30T08:00:00Z (rotation) via sms-oncall, email-oncall" \
        in sunday
