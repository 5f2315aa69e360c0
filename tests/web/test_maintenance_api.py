"""Maintenance windows through the API (SQLite and PostgreSQL, injected clock): made, listed and ended early with
the right roles and validation; a window mutes only the alerts it matches (new ones at once, firing ones at their
next timer), survives a restart, and ending it early releases what it muted at the next tick.

T0 is Monday 2026-11-23 09:00 UTC. The ladder: L3 at once, L2 after 5 min, L1 15 min later."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app

from ..conftest import T0
from ..engine.harness import Heard, Ladder, body_with

READ, WRITE = "read-token-0123", "write-token-89ab"
CHANNELS = {"info-chat": {"type": "log"}, "warn-chat": {"type": "log"}, "pager": {"type": "log"}}
ROUTES = [{"levels": {"L3": ["info-chat"], "L2": ["warn-chat"], "L1": ["pager"]}}]
INFO = ("HighErrorRate",)


def at(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def make_ladder(make_config, clock):
    made = []

    def make(config=None) -> Ladder:
        config = config or make_config(channels=CHANNELS, routes=ROUTES)
        app = create_app(config, clock=clock, registry=CollectorRegistry())
        lad = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
        made.append((app, lad))
        return lad

    yield make
    for app, lad in made:
        lad.close()
        app.extensions["alert_receiver"].db.dispose()


@pytest.fixture
def api(make_config, clock):
    config = make_config(auth={"tokens": [{"name": "analysts", "token": READ, "role": "read"},
                                          {"name": "oncall", "token": WRITE, "role": "write"}]})
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    client = app.test_client()

    def call(method: str, path: str, body=None, *, token: str | None = WRITE, **kw):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return client.open(path, method=method, json=body, headers=headers, **kw)

    yield call
    app.extensions["alert_receiver"].db.dispose()


def alerts_by_service(lad: Ladder) -> dict[str, dict]:
    out = {}
    for a in lad.client.get("/api/v1/alerts").get_json()["alerts"]:
        out[a["labels"]["service"]] = lad.client.get(f"/api/v1/alerts/{a['id']}").get_json()
    return out


# --- the API ------------------------------------------------------------------------------------------------


def test_make_list_and_end_with_roles(api, clock):
    made = api("POST", "/api/v1/maintenance", {"matchers": ['service="db"', 'env=~"prod|staging"'],
                                               "end": at(60), "comment": "failover"})
    assert made.status_code == 201
    window = made.get_json()
    assert window == {"id": window["id"], "matchers": ['service="db"', 'env=~"prod|staging"'], "start": at(0),
                      "end": at(60), "comment": "failover", "state": "active", "created_at": at(0),
                      "created_by": "oncall", "ended_early_by": None}
    later = api("POST", "/api/v1/maintenance", {"matchers": ["team=ops"], "start": at(120), "end": at(180),
                                                "actor": "erin"}).get_json()
    assert later["state"] == "upcoming" and later["created_by"] == "erin" and later["matchers"] == ['team="ops"']
    listed = api("GET", "/api/v1/maintenance", token=READ).get_json()
    assert listed["at"] == at(0) and [w["id"] for w in listed["windows"]] == [window["id"], later["id"]]

    assert api("POST", "/api/v1/maintenance", {"matchers": ['a="b"'], "end": at(5)}, token=READ).status_code == 403
    assert api("POST", "/api/v1/maintenance", {"matchers": ['a="b"'], "end": at(5)}, token=None).status_code == 401
    assert api("GET", "/api/v1/maintenance", token=None).status_code == 401
    assert api("POST", f"/api/v1/maintenance/{window['id']}/end", token=READ).status_code == 403

    clock.advance(600)
    ended = api("POST", f"/api/v1/maintenance/{window['id']}/end", {"actor": "alice"})
    assert ended.status_code == 200
    assert ended.get_json()["end"] == at(10) and ended.get_json()["state"] == "ended"
    assert ended.get_json()["ended_early_by"] == "alice"
    again = api("POST", f"/api/v1/maintenance/{window['id']}/end")
    assert again.status_code == 409 and again.get_json()["error"] == "already_ended"
    assert api("POST", "/api/v1/maintenance/424242/end").status_code == 404
    # Ending an upcoming window: it never starts.
    assert api("POST", f"/api/v1/maintenance/{later['id']}/end").get_json()["state"] == "ended"
    assert api("GET", "/api/v1/maintenance").get_json()["windows"] == []
    every = api("GET", "/api/v1/maintenance", query_string={"all": "true"}).get_json()["windows"]
    assert [(w["id"], w["state"]) for w in every] == [(window["id"], "ended"), (later["id"], "ended")]


@pytest.mark.parametrize("body, field, fragment", [
    ({"end": at(60)}, "matchers", "matchers is required"),
    ({"matchers": [], "end": at(60)}, "matchers", "a list of 1 to 20"),
    ({"matchers": 'service="db"', "end": at(60)}, "matchers", "a list of 1 to 20"),
    ({"matchers": ['a="b"'] * 21, "end": at(60)}, "matchers", "a list of 1 to 20"),
    ({"matchers": ['service~"db"'], "end": at(60)}, "matchers", "matchers[0]:"),
    ({"matchers": ['a="b", c="d"'], "end": at(60)}, "matchers", "one matcher per item"),
    ({"matchers": ['x=~"("'], "end": at(60)}, "matchers", "matchers[0]:"),
    ({"matchers": [7], "end": at(60)}, "matchers", "matchers[0]: a matcher string"),
    ({"matchers": ['a="b"']}, "end", "end is required"),
    ({"matchers": ['a="b"'], "end": "tomorrow"}, "end", "not an RFC 3339 time"),
    ({"matchers": ['a="b"'], "end": "2026-11-23T10:00:00"}, "end", "no time zone"),
    ({"matchers": ['a="b"'], "start": at(60), "end": at(30)}, "end", "must be after start"),
    ({"matchers": ['a="b"'], "start": at(-60), "end": at(-30)}, "end", "is not in the future"),
    ({"matchers": ['a="b"'], "end": at(60), "comment": "x" * 2001}, "comment", "at most 2000"),
])
def test_bad_windows_are_refused_saying_why(api, body, field, fragment):
    resp = api("POST", "/api/v1/maintenance", body)
    assert resp.status_code == 400, resp.get_json()
    answer = resp.get_json()
    assert answer["field"] == field and fragment in answer["detail"], answer


def test_unknown_fields_and_parameters_are_refused(api):
    resp = api("POST", "/api/v1/maintenance", {"matchers": ['a="b"'], "end": at(60), "until": at(90)})
    assert resp.status_code == 400 and resp.get_json()["error"] == "unknown_field"
    assert api("GET", "/api/v1/maintenance", query_string={"state": "active"}).status_code == 400
    assert api("GET", "/api/v1/maintenance", query_string={"all": "maybe"}).status_code == 400
    resp = api("POST", "/api/v1/maintenance", data=b"matchers", content_type="text/plain")
    assert resp.status_code == 415
    assert api("GET", "/api/v1/maintenance").get_json()["windows"] == []


# --- what a window does -------------------------------------------------------------------------------------------


def test_a_window_mutes_only_matching_alerts_survives_a_restart_and_releases_when_ended(make_ladder):
    lad = make_ladder()
    made = lad.client.post("/api/v1/maintenance", json={"matchers": ['service="db"'], "end": at(60)})
    assert made.status_code == 201
    window_id = made.get_json()["id"]
    lad.post(body_with("g_routing_info", service="db"))
    lad.post(body_with("g_routing_info", service="web"))
    assert lad.step() == [Heard("info-chat", "firing", "L3", INFO)]  # web only
    alerts = alerts_by_service(lad)
    assert alerts["web"]["muted_until"] is None
    assert alerts["db"]["muted_until"] == at(60)
    muted = [e for e in alerts["db"]["timeline"] if e["kind"] == "muted"]
    assert muted[0]["details"] == {"reason": "maintenance", "window": window_id, "until": at(60)}
    assert lad.step(5) == [Heard("warn-chat", "escalated", "L2", INFO)]  # web climbs; db waits at L3

    # A second app on the same database (a restart, a replica) sees the window and mutes with it.
    second = make_ladder(lad.config)
    assert [w["id"] for w in second.client.get("/api/v1/maintenance").get_json()["windows"]] == [window_id]
    second.post(body_with("g_routing_critical", service="db", instance="db-2"))
    assert second.step() == []
    assert second.client.get("/api/v1/alerts", query_string={"severity": "critical"}
                             ).get_json()["alerts"][0]["muted_until"] == at(60)

    # Ended early at 09:10: the next tick tells each muted alert at the level it waited at.
    lad.clock.advance(5 * 60)
    ended = lad.client.post(f"/api/v1/maintenance/{window_id}/end")
    assert ended.status_code == 200
    heard = second.step()
    assert heard == [Heard("pager", "firing", "L1", ("HighErrorRate/db-2",)), Heard("info-chat", "firing", "L3", INFO)]
    db = alerts_by_service(lad)["db"]
    assert db["muted_until"] is None and db["level_entered_at"] == at(10) and db["next_action_at"] == at(15)


def test_a_window_made_while_an_alert_fires_mutes_it_at_its_next_timer(make_ladder):
    lad = make_ladder()
    lad.post(body_with("g_routing_info", service="db"))
    assert lad.step() == [Heard("info-chat", "firing", "L3", INFO)]
    lad.clock.advance(60)
    assert lad.client.post("/api/v1/maintenance", json={"matchers": ['service="db"'], "end": at(30)}
                           ).status_code == 201
    assert lad.step(4) == []  # 09:05: L2 was due; muted instead, the clock waits
    db = alerts_by_service(lad)["db"]
    assert db["level"] == "L3" and db["muted_until"] == at(30)
    for _ in range(4):
        assert lad.step(5) == []
    # 09:30: the window ran out; L3 was paged before: a repeat, and L3 starts anew (L2 at 09:35).
    assert lad.step(5) == [Heard("info-chat", "repeat", "L3", INFO)]
    assert lad.step(4.9) == []
    assert lad.step(0.1) == [Heard("warn-chat", "escalated", "L2", INFO)]


def test_retention_deletes_windows_that_ended_before_its_cutoff(writes, config, clock):
    from receiver.engine.retention import run_retention
    from receiver.store import maintenance

    now = clock.now()
    with writes.transaction() as conn:
        for days_ago in (200, 89):
            maintenance.create(conn, matchers=[f'n="{days_ago}"'], start=now - dt.timedelta(days=days_ago + 1),
                               end=now - dt.timedelta(days=days_ago), comment="", now=now, actor=None)
    run_retention(writes, config, now)  # retention.days: 90
    with writes.transaction() as conn:
        kept = maintenance.listing(conn, now=now, since=now - dt.timedelta(days=365))
    assert [w.matchers for w in kept] == [('n="89"',)]
