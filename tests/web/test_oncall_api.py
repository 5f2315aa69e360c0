"""GET /api/v1/oncall: who is on call in receiver.yml's schedules, at a given moment or the app clock's now; one
schedule or all; 404 for a schedule nobody configured, 400 for a bad moment or parameter, 401/403 by token.

Without overrides the answers come from the config alone, so one migrated SQLite file serves; overrides, on both
backends, are tested in test_oncall_overrides.py."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.clock import FixedClock
from receiver.config import load_config
from receiver.store import migrate
from receiver.store.db import create_db_engine

UTC = dt.timezone.utc
READ, ADMIN, WEBHOOK = "read-token-0123", "admin-token-4567", "webhook-token-89ab"
PEOPLE = {"alice": {"email": "alice@example.org"}, "bob": {"slack_user": "U02BOB"}}
PRIMARY_DB = {"timezone": "Europe/Berlin", "rotations": [
    {"participants": ["alice", "bob"], "length": "1w", "handoff": "mon 09:00", "start": "2026-01-05"}]}
# Nobody until its first shift (Monday 2026-02-02 00:00 UTC), then a day each.
LATER = {"rotations": [{"participants": ["bob"], "length": "1d", "start": "2026-02-02"}]}
SCHEDULES = {"primary-db": PRIMARY_DB, "later": LATER}


def make_app(tmp_path, clock, **sections):
    data = {"database": {"url": f"sqlite:///{tmp_path}/receiver.db"}, "people": PEOPLE, "schedules": SCHEDULES,
            **sections}
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump(data))
    engine = create_db_engine(data["database"]["url"])
    migrate.upgrade(engine)  # the overrides table (none stored here)
    engine.dispose()
    return create_app(load_config(path, env={}), clock=clock, registry=CollectorRegistry())


@pytest.fixture
def oncall_clock():
    return FixedClock(dt.datetime(2026, 1, 5, 8, 30, tzinfo=UTC))  # Monday 09:30 in Berlin, week 1


@pytest.fixture
def api(tmp_path, oncall_clock):
    app = make_app(tmp_path, oncall_clock)
    yield app.test_client()
    app.extensions["alert_receiver"].db.dispose()


@pytest.fixture
def secured(tmp_path, oncall_clock):
    app = make_app(tmp_path, oncall_clock, auth={"tokens": [
        {"name": "alertmanager", "token": WEBHOOK, "role": "webhook"},
        {"name": "analysts", "token": READ, "role": "read"},
        {"name": "admin", "token": ADMIN, "role": "admin"}]})
    yield app.test_client()
    app.extensions["alert_receiver"].db.dispose()


def get(client, expect: int = 200, **query):
    resp = client.get("/api/v1/oncall", query_string=query)
    assert resp.status_code == expect, resp.get_data(as_text=True)
    return resp.get_json()


@pytest.mark.parametrize("at, person, until", [
    ("2026-01-05T08:30:00Z", "alice", "2026-01-12T08:00:00Z"),
    ("2026-01-12T08:30:00Z", "bob", "2026-01-19T08:00:00Z"),
    ("2026-01-12T09:30:00+01:00", "bob", "2026-01-19T08:00:00Z"),  # any offset: the same instant
    ("2026-01-19T08:00:00Z", "alice", "2026-01-26T08:00:00Z"),  # the handoff itself is the next shift's
])
def test_one_schedule_at_a_given_moment(api, at, person, until):
    instant = dt.datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert get(api, schedule="primary-db", at=at) == {
        "schedule": "primary-db", "at": instant, "person": person, "until": until, "source": "rotation"}


def test_at_defaults_to_the_app_clock(api, oncall_clock):
    body = get(api, schedule="primary-db")
    assert (body["at"], body["person"], body["until"]) == ("2026-01-05T08:30:00Z", "alice",
                                                           "2026-01-12T08:00:00Z")
    oncall_clock.set(dt.datetime(2026, 1, 12, 8, 30, tzinfo=UTC))
    body = get(api, schedule="primary-db")
    assert (body["at"], body["person"], body["until"]) == ("2026-01-12T08:30:00Z", "bob",
                                                           "2026-01-19T08:00:00Z")
    assert get(api, schedule="primary-db", at="")["person"] == "bob"  # empty is absent


def test_every_schedule_sorted_by_name(api):
    assert get(api, at="2026-01-05T08:30:00Z") == {"at": "2026-01-05T08:30:00Z", "oncall": [
        {"schedule": "later", "at": "2026-01-05T08:30:00Z", "person": None,
         "until": "2026-02-02T00:00:00Z", "source": None},
        {"schedule": "primary-db", "at": "2026-01-05T08:30:00Z", "person": "alice",
         "until": "2026-01-12T08:00:00Z", "source": "rotation"}]}
    everywhere = get(api)  # the clock's now
    assert everywhere["at"] == "2026-01-05T08:30:00Z"
    assert [(o["schedule"], o["person"]) for o in everywhere["oncall"]] == [("later", None), ("primary-db", "alice")]


def test_no_schedules_is_an_empty_list(tmp_path, oncall_clock):
    app = make_app(tmp_path, oncall_clock, schedules={})
    try:
        assert get(app.test_client()) == {"at": "2026-01-05T08:30:00Z", "oncall": []}
    finally:
        app.extensions["alert_receiver"].db.dispose()


def test_an_unknown_schedule_is_404_naming_it(api):
    body = get(api, 404, schedule="secondary-db")
    assert body["error"] == "not_found" and "secondary-db" in body["detail"] and body["parameter"] == "schedule"


@pytest.mark.parametrize("query, parameter", [
    ({"at": "yesterday"}, "at"),
    ({"at": "2026-01-05T08:30:00"}, "at"),  # no zone
    ({"at": "2026-13-05T08:30:00Z"}, "at"),
    ({"schedule": "primary-db", "at": "9999-12-31T23:00:00Z"}, "at"),  # the next handoff is past year 9999
    ({"at": "0001-01-01T00:00:00+01:00"}, "at"),  # no such instant in UTC
    ({"schedule": "primary\x00db"}, "schedule"),
])
def test_a_bad_value_is_400_naming_the_parameter(api, query, parameter):
    body = get(api, 400, **query)
    assert body["error"] == "bad_parameter" and body["parameter"] == parameter


def test_unknown_parameters_are_refused(api):
    body = get(api, 400, when="now")
    assert body["error"] == "unknown_parameter" and body["allowed"] == ["at", "schedule"]


def test_tokens_a_reader_may_ask_nobody_else(secured):
    assert secured.get("/api/v1/oncall").status_code == 401
    assert secured.get("/api/v1/oncall", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert secured.get("/api/v1/oncall", headers={"Authorization": f"Bearer {WEBHOOK}"}).status_code == 403
    for token in (READ, ADMIN):
        resp = secured.get("/api/v1/oncall", query_string={"schedule": "primary-db"},
                           headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200 and resp.get_json()["person"] == "alice"


def events(calendar: str) -> list[dict[str, str]]:
    """The VEVENTs of a calendar, unfolded, as {property: value}."""
    unfolded = calendar.replace("\r\n ", "")
    found, current = [], None
    for line in unfolded.split("\r\n"):
        if line == "BEGIN:VEVENT":
            current = {}
        elif line == "END:VEVENT":
            found.append(current)
            current = None
        elif current is not None and line:
            key, _, value = line.partition(":")
            current[key] = value
    return found


def test_the_ical_export_lists_the_next_shifts_as_the_api_answers_them(api, oncall_clock):
    r = api.get("/api/v1/schedules/primary-db.ics", query_string={"days": 14})
    assert r.status_code == 200 and r.mimetype == "text/calendar"
    body = r.get_data(as_text=True)
    assert body.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n") and body.endswith("END:VCALENDAR\r\n")
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))
    shifts = [(e["DTSTART"], e["DTEND"], e["SUMMARY"]) for e in events(body)]
    # from now (Monday 09:30 Berlin) for 14 days: the rest of alice's week, bob's week, alice's first half hour
    assert shifts == [("20260105T083000Z", "20260112T080000Z", "alice on call (primary-db)"),
                      ("20260112T080000Z", "20260119T080000Z", "bob on call (primary-db)"),
                      ("20260119T080000Z", "20260119T083000Z", "alice on call (primary-db)")]
    # each event's person is who the API says is on call at its start, until its end (or the range's)
    for start, end, summary in shifts:
        at = dt.datetime.strptime(start, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).isoformat()
        answer = get(api, schedule="primary-db", at=at)
        assert summary.startswith(answer["person"] + " ")


def test_the_ical_export_leaves_nobody_out_and_refuses_what_it_cannot_answer(api):
    later = events(api.get("/api/v1/schedules/later.ics", query_string={"days": 30}).get_data(as_text=True))
    # nobody until 2026-02-02; then bob every day, back to back: one event
    assert [(e["DTSTART"], e["DTEND"]) for e in later] == [("20260202T000000Z", "20260204T083000Z")]
    assert api.get("/api/v1/schedules/nowhere.ics").status_code == 404
    assert api.get("/api/v1/schedules/later.ics", query_string={"days": 400}).status_code == 400
    assert api.get("/api/v1/schedules/later.ics", query_string={"weeks": 2}).status_code == 400


def test_calendar_text_is_escaped_and_long_lines_folded():
    from receiver.engine.oncall import OnCall
    from receiver.web.ical import calendar

    t0 = dt.datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    name = "db,primary;" + "x" * 80
    body = calendar(name, [OnCall(name, t0, "alice", t0 + dt.timedelta(days=7), "rotation")], now=t0)
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))
    [event] = events(body)
    assert event["SUMMARY"] == "alice on call (db\\,primary\\;" + "x" * 80 + ")"
