"""Quiet hours on an injected clock (SQLite and PostgreSQL): a route's mute_time_intervals / active_time_intervals
store the alert and say so on its timeline, send nothing during the mute, wait with the escalation clock, and tell
the current level exactly once when the mute ends; notices about alerts told before the mute are held until its end.

T0 is Monday 2026-11-23 09:00 UTC. The default ladder: L3 at once, L2 after 5 min, L1 15 min later, then every 15.
"""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app

from ..conftest import T0
from .harness import Heard, Ladder

CHANNELS = {"info-chat": {"type": "log"}, "warn-chat": {"type": "log"}, "pager": {"type": "log"}}
LEVELS = {"L3": ["info-chat"], "L2": ["warn-chat"], "L1": ["pager"]}
INFO = ("HighErrorRate",)


def window(start: str, end: str) -> list[dict]:
    return [{"times": [{"start_time": start, "end_time": end}]}]


@pytest.fixture
def ladder(make_config, clock):
    made = []

    def make(route: dict, intervals: dict) -> Ladder:
        config = make_config(channels=CHANNELS, time_intervals=intervals, routes=[{"levels": LEVELS, **route}])
        app = create_app(config, clock=clock, registry=CollectorRegistry())
        lad = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
        made.append((app, lad))
        return lad

    yield make
    for app, lad in made:
        lad.close()
        app.extensions["alert_receiver"].db.dispose()


def only_alert(lad: Ladder) -> dict:
    alerts = lad.client.get("/api/v1/alerts").get_json()["alerts"]
    assert len(alerts) == 1
    return lad.client.get(f"/api/v1/alerts/{alerts[0]['id']}").get_json()


def events(alert: dict) -> list[str]:
    return [e["kind"] for e in alert["timeline"] if not e["id"].startswith("message:")]


def at(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def test_mute_interval_suppresses_then_releases_once_and_the_clock_waited(ladder):
    lad = ladder({"mute_time_intervals": ["morning"]}, {"morning": window("09:00", "10:00")})
    lad.post("g_routing_info")  # an L3 alert at 09:00, in the window
    assert lad.step() == []
    alert = only_alert(lad)
    assert alert["status"] == "firing" and alert["level"] == "L3"
    assert alert["muted_until"] == at(60) and alert["next_action_at"] == at(60)
    muted = [e for e in alert["timeline"] if e["kind"] == "muted"]
    assert len(muted) == 1
    assert muted[0]["details"] == {"reason": "time_interval", "interval": "morning", "until": at(60)}
    for _ in range(11):  # through what would have been L2 (5 min) and L1 (20 min) and two repeats
        assert lad.step(5) == []
    assert only_alert(lad)["level"] == "L3"
    # 10:00: told once, at the level it waited at, as its first page ("firing": L3 was never paged)
    assert lad.step(5) == [Heard("info-chat", "firing", "L3", INFO)]
    alert = only_alert(lad)
    assert alert["level"] == "L3" and alert["muted_until"] is None
    assert alert["level_entered_at"] == at(60) and alert["next_action_at"] == at(65)  # the level starts anew
    assert events(alert).count("muted") == 1 and events(alert).count("unmuted") == 1
    assert lad.step(4.9) == []
    assert lad.step(0.1) == [Heard("warn-chat", "escalated", "L2", INFO)]  # then the normal ladder


def test_active_time_intervals_mute_outside_them(ladder):
    lad = ladder({"active_time_intervals": ["office"]}, {"office": window("09:30", "17:00")})
    lad.post("g_routing_info")
    assert lad.step() == []
    muted = [e for e in only_alert(lad)["timeline"] if e["kind"] == "muted"]
    assert muted[0]["details"]["interval"] == "outside active_time_intervals"
    for _ in range(5):
        assert lad.step(5) == []
    assert lad.step(5) == [Heard("info-chat", "firing", "L3", INFO)]  # 09:30
    assert lad.step(5) == [Heard("warn-chat", "escalated", "L2", INFO)]  # 09:35


def test_the_default_routes_intervals_apply_to_routes_that_name_none(ladder, make_config):
    lad = ladder({"mute_time_intervals": ["morning"]}, {"morning": window("09:00", "10:00")})
    assert lad.config.resolved_routes()[-1].mute_time_intervals == ("morning",)
    config = make_config(channels=CHANNELS, time_intervals={"morning": window("09:00", "10:00")}, routes=[
        {"matchers": ['team="db"'], "mute_time_intervals": []},
        {"matchers": ['team="web"']},
        {"levels": LEVELS, "mute_time_intervals": ["morning"]}])
    db, web, default = config.resolved_routes()
    assert db.mute_time_intervals == () and web.mute_time_intervals == ("morning",)


def test_an_alert_resolved_during_its_mute_is_never_told(ladder):
    lad = ladder({"mute_time_intervals": ["morning"]}, {"morning": window("09:00", "10:00")})
    lad.post("g_routing_critical")
    assert lad.step(1) == []
    lad.post("g_routing_critical_resolved")
    assert lad.step(1) == []
    for _ in range(20):
        assert lad.step(5) == []
    alert = only_alert(lad)
    assert alert["status"] == "resolved" and events(alert) == ["received", "muted", "resolved"]


def test_a_paged_alert_muted_later_holds_its_resolution_notice_until_the_mute_ends(ladder):
    lad = ladder({"mute_time_intervals": ["later"]}, {"later": window("09:03", "10:00")})
    lad.post("g_routing_info")
    assert lad.step() == [Heard("info-chat", "firing", "L3", INFO)]  # 09:00, before the window
    assert lad.step(5) == []  # 09:05: L2 is due, but muted: no escalation
    alert = only_alert(lad)
    assert alert["level"] == "L3" and alert["muted_until"] == at(60)
    resp = lad.client.post(f"/api/v1/alerts/{alert['id']}/resolve", json={"actor": "alice"})
    assert resp.status_code == 200
    for _ in range(10):  # until 09:55: the notice waits
        assert lad.step(5) == []
    assert lad.step(5) == [Heard("info-chat", "resolved", "L3", INFO)]  # 10:00, once
    assert lad.step(30) == []


def test_a_resolution_from_alertmanager_during_the_mute_is_held_too(ladder):
    lad = ladder({"mute_time_intervals": ["later"]}, {"later": window("09:03", "10:00")})
    lad.post("g_routing_critical")
    assert lad.step() == [Heard("pager", "firing", "L1", INFO)]
    assert lad.step(15) == []  # 09:15: the repeat is muted
    lad.post("g_routing_critical_resolved")  # the webhook's own write: the notice is held, not sent
    assert only_alert(lad)["status"] == "resolved"
    for _ in range(8):
        assert lad.step(5) == []
    assert lad.step(5) == [Heard("pager", "resolved", "L1", INFO)]  # 10:00


def test_an_ack_that_runs_out_during_a_mute_tells_the_level_when_the_mute_ends(ladder):
    lad = ladder({"mute_time_intervals": ["later"]}, {"later": window("09:05", "10:00")})
    lad.post("g_routing_info")
    assert lad.step() == [Heard("info-chat", "firing", "L3", INFO)]
    alert_id = only_alert(lad)["id"]
    resp = lad.client.post(f"/api/v1/alerts/{alert_id}/ack", json={"actor": "alice", "ttl": "10m"})
    assert resp.status_code == 200
    assert lad.step(1) == [Heard("info-chat", "acknowledged", "L3", INFO)]  # 09:01, before the window
    assert lad.step(10) == []  # 09:11: the ack ran out, inside the window
    alert = only_alert(lad)
    assert alert["acked_at"] is None and alert["muted_until"] == at(60)
    assert events(alert)[-2:] == ["muted", "ack_expired"]
    for _ in range(9):
        assert lad.step(5) == []
    assert lad.step(4) == [Heard("info-chat", "repeat", "L3", INFO)]  # 10:00: L3 was paged before: a repeat


def test_escalating_by_hand_during_a_mute_pages_and_the_mute_comes_back_at_the_next_timer(ladder):
    lad = ladder({"mute_time_intervals": ["morning"]}, {"morning": window("09:00", "10:00")})
    lad.post("g_routing_info")
    assert lad.step(1) == []
    alert_id = only_alert(lad)["id"]
    resp = lad.client.post(f"/api/v1/alerts/{alert_id}/escalate", json={"actor": "alice"})
    assert resp.status_code == 200
    assert lad.step() == [Heard("warn-chat", "escalated", "L2", INFO)]  # asked for: sent, muted or not
    alert = only_alert(lad)
    assert alert["muted_until"] is None and "unmuted" in events(alert)
    assert lad.step(15) == []  # 09:16: L2's timer ran out inside the window: muted again, no L1 page
    assert only_alert(lad)["muted_until"] == at(60)
    for _ in range(8):
        assert lad.step(5) == []
    assert lad.step(4) == [Heard("warn-chat", "repeat", "L2", INFO)]  # 10:00: L2 was paged: a repeat


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the wire form is the SQLite writer's
def test_the_sqlite_writers_batch_mutes_with_the_wire_form(make_config, db_url):
    """The SQLite writer process applies snapshots prepared by workers (their wire form: labels as JSON, no config),
    several in one transaction: time-interval mutes travel with the snapshot, windows are read in the batch."""
    import json
    import pickle

    import sqlalchemy as sa

    from receiver import payload as payload_mod
    from receiver.engine.ingest import prepare
    from receiver.engine.ingest_job import IngestSnapshot
    from receiver.store import maintenance
    from receiver.store.db import create_db_engine, write_transaction
    from receiver.store.write_port import run_jobs

    from ..support.fixtures import raw

    config = make_config(channels=CHANNELS, time_intervals={"morning": window("09:00", "10:00")}, routes=[
        {"matchers": ['team="quiet"'], "mute_time_intervals": ["morning"]}, {"levels": LEVELS}])
    engine = create_db_engine(db_url)
    with write_transaction(engine) as conn:
        made = maintenance.create(conn, matchers=['service="db"'], start=T0, end=T0 + dt.timedelta(minutes=30),
                                  comment="", now=T0, actor="t")

    def snapshot(**labels) -> IngestSnapshot:
        doc = json.loads(raw("g_routing_info"))
        doc["alerts"][0]["labels"].update(labels)
        doc["alerts"][0].pop("fingerprint", None)
        doc["groupKey"] += repr(sorted(labels.items()))
        body = json.dumps(doc).encode()
        job = IngestSnapshot(prepare(payload_mod.parse(body), config=config, now=T0), body)
        return pickle.loads(pickle.dumps(job.for_writer()))

    jobs = [snapshot(team="quiet"), snapshot(service="db"), snapshot(service="web")]
    with write_transaction(engine) as conn:
        results = run_jobs(conn, jobs)
    assert [r.messages for r in results] == [0, 0, 1]
    with engine.connect() as conn:
        rows = {r.service: (r.muted_until, r.next_action_at) for r in conn.execute(
            sa.text("SELECT service, muted_until, next_action_at FROM alerts"))}
        details = [json.loads(d) for (d,) in conn.execute(sa.text(
            "SELECT details FROM alert_events WHERE kind = 'muted' ORDER BY alert_id"))]
    engine.dispose()
    assert rows["checkout"][0].startswith("2026-11-23 10:00:00") and rows["db"][0].startswith("2026-11-23 09:30:00")
    assert rows["web"][0] is None
    assert details == [{"reason": "time_interval", "interval": "morning", "until": "2026-11-23T10:00:00Z"},
                       {"reason": "maintenance", "window": made.id, "until": "2026-11-23T09:30:00Z"}]
