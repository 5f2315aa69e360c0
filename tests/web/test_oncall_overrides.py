"""Schedule overrides through the API, on SQLite and PostgreSQL with an injected clock: POST makes one (write role),
GET lists those holding or to come, DELETE removes one; what is refused says why and stores nothing; an override
wins for its span and then the rotation returns; a start in the past holds from now; the latest made wins where
two overlap; overrides live in the database, so a restarted app (or a second replica) sees them; retention deletes
those ended long ago."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.engine.retention import run_retention

UTC = dt.timezone.utc
TOKENS = {"webhook": "webhook-token-0000", "read": "read-token-0123", "write": "write-token-89ab"}
PEOPLE = {"alice": {"email": "alice@example.org"}, "bob": {}, "carol": {"phone": "+4915550003"}}
WEEKLY = {"participants": ["alice", "bob"], "length": "1w", "handoff": "mon 09:00", "start": "2026-01-05"}
SCHEDULES = {"primary-db": {"timezone": "Europe/Berlin", "rotations": [WEEKLY]},
             "secondary-db": {"rotations": [{"participants": ["bob"]}]}}
NOW = dt.datetime(2026, 1, 7, 12, 0, tzinfo=UTC)  # Wednesday of alice's first week (until Mon 2026-01-12T08:00Z)
OVERRIDES = "/api/v1/schedules/primary-db/overrides"


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@pytest.fixture
def oncall_config(make_config):
    return make_config(people=PEOPLE, schedules=SCHEDULES, auth={"tokens": [
        {"name": "alertmanager", "token": TOKENS["webhook"], "role": "webhook"},
        {"name": "analysts", "token": TOKENS["read"], "role": "read"},
        {"name": "oncall-lead", "token": TOKENS["write"], "role": "write"}]})


@pytest.fixture
def clock(clock):
    clock.set(NOW)
    return clock


def build(config, clock):
    return create_app(config, clock=clock, registry=CollectorRegistry())


def close(app) -> None:
    svc = app.extensions["alert_receiver"]
    svc.writes.close()
    svc.db.dispose()


@pytest.fixture
def app(oncall_config, clock):
    app = build(oncall_config, clock)
    yield app
    close(app)


@pytest.fixture
def api(app):
    return app.test_client()


def make(api, expect: int = 201, schedule: str = "primary-db", role: str = "write", **body):
    resp = api.post(f"/api/v1/schedules/{schedule}/overrides", json=body, headers=bearer(role))
    assert resp.status_code == expect, resp.get_data(as_text=True)
    return resp.get_json()


def listed(api, schedule: str = "primary-db") -> list[dict]:
    resp = api.get(f"/api/v1/schedules/{schedule}/overrides", headers=bearer("read"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["schedule"] == schedule
    return resp.get_json()["overrides"]


def who(api, at: str, schedule: str = "primary-db") -> tuple:
    resp = api.get("/api/v1/oncall", query_string={"schedule": schedule, "at": at}, headers=bearer("read"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    return body["person"], body["until"], body["source"]


def test_make_list_and_delete_an_override(api):
    made = make(api, person="carol", start="2026-01-08T10:00:00Z", end="2026-01-08T18:00:00+00:00")
    assert made == {"id": made["id"], "schedule": "primary-db", "person": "carol", "start": "2026-01-08T10:00:00Z",
                    "end": "2026-01-08T18:00:00Z", "created_at": "2026-01-07T12:00:00Z", "created_by": "oncall-lead"}
    other = make(api, person="alice", start="2026-01-09T11:00:00+01:00", end="2026-01-09T12:00:00+01:00",
                 actor="  erin  ")
    assert (other["start"], other["end"], other["created_by"]) == ("2026-01-09T10:00:00Z", "2026-01-09T11:00:00Z",
                                                                   "erin")
    assert listed(api) == [made, other]
    assert listed(api, "secondary-db") == []
    assert who(api, "2026-01-08T12:00:00Z") == ("carol", "2026-01-08T18:00:00Z", "override")

    assert api.delete(f"{OVERRIDES}/{made['id']}", headers=bearer("write")).status_code == 204
    assert listed(api) == [other]
    assert who(api, "2026-01-08T12:00:00Z") == ("alice", "2026-01-09T10:00:00Z", "rotation")
    again = api.delete(f"{OVERRIDES}/{made['id']}", headers=bearer("write"))
    assert again.status_code == 404 and str(made["id"]) in again.get_json()["detail"]
    # an override is deleted through its own schedule only
    wrong = api.delete(f"/api/v1/schedules/secondary-db/overrides/{other['id']}", headers=bearer("write"))
    assert wrong.status_code == 404 and listed(api) == [other]


def test_roles_a_reader_lists_but_cannot_make_or_delete(api):
    made = make(api, person="carol", start="2026-01-08T10:00:00Z", end="2026-01-08T18:00:00Z")
    body = {"person": "bob", "start": "2026-01-08T10:00:00Z", "end": "2026-01-08T18:00:00Z"}
    assert api.post(OVERRIDES, json=body, headers=bearer("read")).status_code == 403
    assert api.post(OVERRIDES, json=body, headers=bearer("webhook")).status_code == 403
    assert api.post(OVERRIDES, json=body).status_code == 401
    assert api.delete(f"{OVERRIDES}/{made['id']}", headers=bearer("read")).status_code == 403
    assert api.delete(f"{OVERRIDES}/{made['id']}").status_code == 401
    assert api.get(OVERRIDES, headers=bearer("webhook")).status_code == 403
    assert api.get(OVERRIDES).status_code == 401
    assert listed(api) == [made]  # nothing made, nothing deleted
    assert api.get(OVERRIDES, headers=bearer("write")).status_code == 200  # write includes read


GOOD = {"person": "carol", "start": "2026-01-08T10:00:00Z", "end": "2026-01-08T18:00:00Z"}


@pytest.mark.parametrize("body, error, field, says", [
    ({**GOOD, "person": "mallory"}, "bad_field", "person", "'mallory' is not in receiver.yml's people"),
    ({**GOOD, "end": "2026-01-08T09:00:00Z"}, "bad_field", "end", "must be after start"),
    ({**GOOD, "end": GOOD["start"]}, "bad_field", "end", "must be after start"),
    ({**GOOD, "start": "2026-01-01T00:00:00Z", "end": "2026-01-07T11:00:00Z"}, "bad_field", "end",
     "is not in the future"),  # both in the past: it would hold for no time at all
    ({**GOOD, "start": "tomorrow"}, "bad_field", "start", "'tomorrow' is not an RFC 3339 time"),
    ({**GOOD, "end": "2026-01-08T18:00:00"}, "bad_field", "end", "has no time zone"),
    ({**GOOD, "end": "0001-01-01T00:00:00+01:00"}, "bad_field", "end", "out of range"),
    ({**GOOD, "start": 1767866400}, "bad_field", "start", "must be a string"),
    ({"person": "carol", "start": GOOD["start"]}, "missing_field", "end", "end is required"),
    ({**GOOD, "persn": "carol"}, "unknown_field", None, "unknown field(s): persn"),
])
def test_a_bad_override_is_refused_saying_why_and_nothing_is_stored(api, body, error, field, says):
    resp = api.post(OVERRIDES, json=body, headers=bearer("write"))
    assert resp.status_code == 400, resp.get_data(as_text=True)
    answer = resp.get_json()
    assert answer["error"] == error and says in answer["detail"] and answer.get("field") == field
    assert listed(api) == []


def test_an_unknown_schedule_a_bad_body_or_a_query_string_is_refused(api):
    resp = api.post("/api/v1/schedules/tertiary-db/overrides", json=GOOD, headers=bearer("write"))
    assert resp.status_code == 404 and "'tertiary-db'" in resp.get_json()["detail"]
    assert api.get("/api/v1/schedules/tertiary-db/overrides", headers=bearer("read")).status_code == 404
    assert api.delete("/api/v1/schedules/tertiary-db/overrides/1", headers=bearer("write")).status_code == 404
    assert api.post(OVERRIDES, data="carol", content_type="text/plain", headers=bearer("write")).status_code == 415
    assert api.post(OVERRIDES, data="{", content_type="application/json",
                    headers=bearer("write")).get_json()["error"] == "malformed_json"
    assert api.post(OVERRIDES, json=["carol"], headers=bearer("write")).get_json()["error"] == "bad_body"
    resp = api.post(OVERRIDES, json=GOOD, query_string={"force": "1"}, headers=bearer("write"))
    assert resp.status_code == 400 and resp.get_json()["error"] == "unknown_parameter"
    assert api.get(OVERRIDES, query_string={"all": "1"}, headers=bearer("read")).status_code == 400
    assert listed(api) == []


@pytest.mark.parametrize("at, expected", [
    ("2026-01-08T09:59:59Z", ("alice", "2026-01-08T10:00:00Z", "rotation")),  # the override's start cuts `until`
    ("2026-01-08T10:00:00Z", ("bob", "2026-01-08T18:00:00Z", "override")),
    ("2026-01-08T17:59:59Z", ("bob", "2026-01-08T18:00:00Z", "override")),
    ("2026-01-08T18:00:00Z", ("alice", "2026-01-12T08:00:00Z", "rotation")),  # and the rotation returns
])
def test_an_override_wins_for_its_span_and_then_the_rotation_returns(api, at, expected):
    make(api, person="bob", start="2026-01-08T10:00:00Z", end="2026-01-08T18:00:00Z")
    assert who(api, at) == expected
    everywhere = api.get("/api/v1/oncall", query_string={"at": at}, headers=bearer("read")).get_json()["oncall"]
    assert [(o["schedule"], o["person"], o["source"]) for o in everywhere] == [
        ("primary-db", expected[0], expected[2]), ("secondary-db", "bob", "rotation")]


def test_a_start_in_the_past_holds_from_now(api, clock):
    made = make(api, person="carol", start="2026-01-01T00:00:00Z", end="2026-01-07T14:00:00Z")
    assert (made["start"], made["end"]) == ("2026-01-07T12:00:00Z", "2026-01-07T14:00:00Z")
    assert who(api, "2026-01-07T11:59:59Z") == ("alice", "2026-01-07T12:00:00Z", "rotation")  # the past stands
    assert who(api, "2026-01-07T12:00:00Z") == ("carol", "2026-01-07T14:00:00Z", "override")
    assert api.get("/api/v1/oncall", query_string={"schedule": "primary-db"},
                   headers=bearer("read")).get_json()["person"] == "carol"  # now, by the app's clock
    clock.set(dt.datetime(2026, 1, 7, 14, 0, tzinfo=UTC))
    assert listed(api) == []  # ended: no longer listed
    assert who(api, "2026-01-07T14:00:00Z") == ("alice", "2026-01-12T08:00:00Z", "rotation")


def test_the_list_holds_current_and_future_overrides_earliest_first(api, clock):
    late = make(api, person="bob", start="2026-01-09T00:00:00Z", end="2026-01-10T00:00:00Z")
    soon = make(api, person="carol", start="2026-01-07T13:00:00Z", end="2026-01-08T00:00:00Z")
    holding = make(api, person="alice", start="2026-01-07T12:00:00Z", end="2026-01-07T12:30:00Z")
    assert [o["id"] for o in listed(api)] == [holding["id"], soon["id"], late["id"]]
    clock.set(dt.datetime(2026, 1, 8, 0, 0, tzinfo=UTC))
    assert [o["id"] for o in listed(api)] == [late["id"]]


def test_where_overrides_overlap_the_latest_made_wins(api):
    make(api, person="carol", start="2026-01-08T10:00:00Z", end="2026-01-08T20:00:00Z")
    make(api, person="bob", start="2026-01-08T12:00:00Z", end="2026-01-08T14:00:00Z")
    assert who(api, "2026-01-08T11:00:00Z") == ("carol", "2026-01-08T12:00:00Z", "override")
    assert who(api, "2026-01-08T13:00:00Z") == ("bob", "2026-01-08T14:00:00Z", "override")
    assert who(api, "2026-01-08T14:00:00Z") == ("carol", "2026-01-08T20:00:00Z", "override")
    make(api, person="alice", start="2026-01-08T09:00:00Z", end="2026-01-08T21:00:00Z")  # made last: covers both
    assert who(api, "2026-01-08T13:00:00Z") == ("alice", "2026-01-08T21:00:00Z", "override")


def test_an_override_survives_a_restart_and_every_replica_sees_it(oncall_config, clock, make_config):
    first, replica = build(oncall_config, clock), build(oncall_config, clock)
    try:
        made = make(first.test_client(), person="carol", start="2026-01-08T10:00:00Z", end="2026-01-08T18:00:00Z")
        assert who(replica.test_client(), "2026-01-08T12:00:00Z") == ("carol", "2026-01-08T18:00:00Z", "override")
    finally:
        close(first)
        close(replica)
    # a new process on the same database URL, with a config re-read from its file
    restarted = build(make_config(people=PEOPLE, schedules=SCHEDULES, auth={"tokens": [
        {"name": "analysts", "token": TOKENS["read"], "role": "read"}]}), clock)
    try:
        api = restarted.test_client()
        assert listed(api) == [made]
        assert who(api, "2026-01-08T12:00:00Z") == ("carol", "2026-01-08T18:00:00Z", "override")
    finally:
        close(restarted)


def test_retention_deletes_overrides_that_ended_before_its_cutoff(app, api, clock):
    old = make(api, person="carol", start="2026-01-07T12:00:00Z", end="2026-01-08T00:00:00Z")
    kept = make(api, person="bob", start="2026-01-07T12:00:00Z", end="2026-04-01T00:00:00Z")
    svc = app.extensions["alert_receiver"]
    days = svc.config.retention.days
    # the cutoff is now − retention.days rounded down to midnight: at 2026-01-08 12:00 + days, the old one is not
    # past it yet (it ended at that midnight); a day later it is
    run_retention(svc.writes, svc.config, dt.datetime(2026, 1, 8, 12, 0, tzinfo=UTC) + dt.timedelta(days=days))
    clock.set(dt.datetime(2026, 1, 1, tzinfo=UTC))  # list from before both began: everything stored is listed
    assert [o["id"] for o in listed(api)] == [old["id"], kept["id"]]
    run_retention(svc.writes, svc.config, dt.datetime(2026, 1, 9, 0, 0, 1, tzinfo=UTC) + dt.timedelta(days=days))
    assert [o["id"] for o in listed(api)] == [kept["id"]]
