"""The API, the CLI and the iCal export agree on who is on call (issue 17, "Must show"), on SQLite and PostgreSQL:
a weekly rotation handing off on Monday 09:00 Europe/Berlin with overrides made through the API, asked on both sides
of the handoff, across the March (2026-03-29) and October (2026-10-25) DST changes, and inside the overrides — by
GET /api/v1/oncall, by `alert-receiver oncall --json --at` (CliRunner, the same receiver.yml and database) and by
the VEVENTs of GET /api/v1/schedules/primary-db.ics."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.cli import main

from .test_oncall_api import events

UTC = dt.timezone.utc
PEOPLE = {"alice": {"email": "alice@example.org"}, "bob": {"phone": "+4915550002"}, "carol": {}}
WEEKLY = {"participants": ["alice", "bob"], "length": "1w", "handoff": "mon 09:00", "start": "2026-01-05"}
SCHEDULES = {"primary-db": {"timezone": "Europe/Berlin", "rotations": [WEEKLY]},
             "secondary-db": {"rotations": [{"participants": ["carol"]}]}}
NOW = dt.datetime(2026, 3, 16, 12, 0, tzinfo=UTC)  # the app's clock: the calendar starts here, 366 days ahead
OVERRIDES = [
    {"person": "carol", "start": "2026-03-31T10:00:00Z", "end": "2026-04-01T10:00:00Z"},  # inside alice's week
    {"person": "carol", "start": "2026-10-26T07:30:00Z", "end": "2026-10-26T08:30:00Z"},  # across a handoff
    {"person": "alice", "start": "2026-10-26T07:45:00Z", "end": "2026-10-26T08:15:00Z"},  # inside, made later
]

# (instant, who is on call): the rotation hands off at 09:00 Berlin, 08:00Z in winter and 07:00Z in summer
CASES = [
    ("2026-03-23T07:59:59Z", "alice"), ("2026-03-23T08:00:00Z", "bob"),   # the last winter handoff, both sides
    ("2026-03-29T00:59:59Z", "bob"), ("2026-03-29T01:00:00Z", "bob"),     # the clocks go forward: nothing changes
    ("2026-03-30T06:59:59Z", "bob"), ("2026-03-30T07:00:00Z", "alice"),   # the first summer handoff, 167 h later
    ("2026-03-30T07:59:59Z", "alice"),                                    # 168 h would still have been bob's
    ("2026-03-31T09:59:59Z", "alice"), ("2026-03-31T10:00:00Z", "carol"),  # the first override begins
    ("2026-04-01T09:59:59Z", "carol"), ("2026-04-01T10:00:00Z", "alice"),  # and ends: the rotation returns
    ("2026-10-19T06:59:59Z", "alice"), ("2026-10-19T07:00:00Z", "bob"),   # the last summer handoff
    ("2026-10-25T00:59:59Z", "bob"), ("2026-10-25T01:00:00Z", "bob"),     # the clocks go back: nothing changes
    ("2026-10-26T07:00:00Z", "bob"),                                      # 168 h later: still bob's (169 h shift)
    ("2026-10-26T07:29:59Z", "bob"), ("2026-10-26T07:30:00Z", "carol"),   # the second override begins
    ("2026-10-26T07:45:00Z", "alice"), ("2026-10-26T08:00:00Z", "alice"),  # the later-made one wins inside it,
    ("2026-10-26T08:15:00Z", "carol"),                                    # across the handoff;
    ("2026-10-26T08:29:59Z", "carol"), ("2026-10-26T08:30:00Z", "alice"),  # then alice's week by rotation
]


@pytest.fixture
def setup(make_config, clock):
    clock.set(NOW)
    config = make_config(people=PEOPLE, schedules=SCHEDULES)
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    client = app.test_client()
    for body in OVERRIDES:
        resp = client.post("/api/v1/schedules/primary-db/overrides", json=body)
        assert resp.status_code == 201, resp.get_data(as_text=True)
    yield config, client
    app.extensions["alert_receiver"].writes.close()
    app.extensions["alert_receiver"].db.dispose()


def stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def cli(config, *args: str) -> dict:
    result = CliRunner().invoke(main, ["oncall", "-c", str(config.source), "--json", *args],
                                env={"RECEIVER_CONFIG": None})
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # the database was read: no note about answering from the rotations alone
    return json.loads(result.stdout)


def test_api_cli_and_ical_agree_on_who_is_on_call(setup):
    config, client = setup
    calendar = client.get("/api/v1/schedules/primary-db.ics", query_string={"days": 366})
    assert calendar.status_code == 200
    shifts = [(stamp(e["DTSTART"]), stamp(e["DTEND"]), e["SUMMARY"]) for e in events(calendar.get_data(as_text=True))]
    assert shifts[0][0] == NOW and shifts[-1][1] == NOW + dt.timedelta(days=366)
    for (_, end, _), (start, _, _) in zip(shifts, shifts[1:]):
        assert end == start  # someone is always on call here: the events tile the range
    for at, person in CASES:
        api = client.get("/api/v1/oncall", query_string={"schedule": "primary-db", "at": at}).get_json()
        assert api["person"] == person, at
        assert cli(config, "--schedule", "primary-db", "--at", at) == api, at
        everywhere = client.get("/api/v1/oncall", query_string={"at": at}).get_json()
        assert cli(config, "--at", at) == everywhere and everywhere["oncall"][0] == api, at
        instant = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
        [event] = [s for s in shifts if s[0] <= instant < s[1]]
        assert event[2] == f"{person} on call (primary-db)", at
        # the answer holds until the event ends, unless it is cut earlier where the same person goes on
        until = dt.datetime.fromisoformat(api["until"].replace("Z", "+00:00"))
        assert until <= event[1], at
    # every event starts where the API says its person takes over, and ends where someone else does
    for start, end, summary in shifts:
        assert summary == f"{person_at(client, start)} on call (primary-db)", start
        if end < shifts[-1][1]:
            assert summary != f"{person_at(client, end)} on call (primary-db)", end


def person_at(client, instant: dt.datetime) -> str:
    query = {"schedule": "primary-db", "at": instant.isoformat()}
    return client.get("/api/v1/oncall", query_string=query).get_json()["person"]


def test_the_overrides_show_as_their_own_events(setup):
    _, client = setup
    body = client.get("/api/v1/schedules/primary-db.ics", query_string={"days": 366}).get_data(as_text=True)
    shifts = [(e["DTSTART"], e["DTEND"], e["SUMMARY"].split(" ")[0]) for e in events(body)]
    around_march = [s for s in shifts if "20260329" <= s[0] <= "20260406"]
    assert around_march == [("20260330T070000Z", "20260331T100000Z", "alice"),
                            ("20260331T100000Z", "20260401T100000Z", "carol"),
                            ("20260401T100000Z", "20260406T070000Z", "alice")]
    around_october = [s for s in shifts if "20261019" <= s[0] <= "20261102T0"]
    assert around_october == [("20261019T070000Z", "20261026T073000Z", "bob"),
                              ("20261026T073000Z", "20261026T074500Z", "carol"),
                              ("20261026T074500Z", "20261026T081500Z", "alice"),
                              ("20261026T081500Z", "20261026T083000Z", "carol"),
                              ("20261026T083000Z", "20261102T080000Z", "alice")]
