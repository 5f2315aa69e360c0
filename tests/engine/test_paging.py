"""Routing to people with an injected clock, on SQLite and PostgreSQL: a level's `{schedule: …, via: […]}` pages the
person on call (rotation, or an override stored in the database) through each via channel with their address, the
notification records whom and why, retries re-resolve, notices go to the person who was paged even after a handoff,
and nobody on shift is a dead message, a `nobody_on_call` event and the schedule's fallback — never a silent drop.

The clock starts at Monday 2026-11-23 09:00 UTC: week 46 of a weekly rotation that began on Monday 2026-01-05, so
alice's week (participants[0]) from 08:00 UTC (09:00 in Berlin) that day until bob's, a week later."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.channels.base import DeliveryError
from receiver.domain import Recipient
from receiver.engine.delivery import Dispatcher
from receiver.metrics import Metrics
from receiver.store.oncall_models import ScheduleOverride
from receiver.web.dashboard_view import timeline_summary

from .harness import Ladder, body_with

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)
HANDOFF = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.timezone.utc)  # Monday 09:00 in Berlin (CET): bob's week

PEOPLE = {
    "alice": {"email": "alice@example.org", "phone": "+4915550001", "slack_user": "U01ALICE"},
    "bob": {"email": "bob@example.org", "phone": "+4915550002"},
    "dave": {"email": "dave@example.org"},  # no phone: an override naming him cannot be texted
}
SCHEDULES = {
    "primary-db": {"timezone": "Europe/Berlin", "fallback": ["fallback-chat"], "rotations": [
        {"participants": ["alice", "bob"], "length": "1w", "handoff": "mon 09:00", "start": "2026-01-05"}]},
    # Saturdays 10-12 only: nobody on a Monday morning. No fallback.
    "weekend": {"rotations": [{"participants": ["bob"], "hours": "sat 10:00-12:00"}]},
}
CHANNELS = {
    "sms-oncall": {"type": "twilio_sms", "account_sid": "AC1", "auth_token": "t", "from": "+15550000000"},
    "email-oncall": {"type": "email", "smtp_host": "127.0.0.1", "from": "alerts@example.org"},
    "slack-critical": {"type": "log"},
    "fallback-chat": {"type": "log"},
    "chat": {"type": "log"},
}
ROUTES = [
    {"matchers": ['team="weekend"'], "levels": {"L1": [{"schedule": "weekend", "via": ["sms-oncall"]}, "chat"]}},
    {"levels": {"L1": [{"schedule": "primary-db", "via": ["sms-oncall", "email-oncall"]}, "slack-critical"],
                "L2": ["chat"], "L3": ["chat"]}},
]


@pytest.fixture
def lad(make_config, clock):
    config = make_config(people=PEOPLE, schedules=SCHEDULES, channels=CHANNELS, routes=ROUTES)
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    ladder = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
    ladder.metrics = Metrics(CollectorRegistry())
    ladder.dispatcher.close()
    ladder.dispatcher = Dispatcher(ladder.writes, config, ladder.channels, clock=clock, metrics=ladder.metrics,
                                   worker="test-engine", rng=lambda: 0.5)
    assert clock.now() == T0
    yield ladder
    ladder.close()
    app.extensions["alert_receiver"].db.dispose()


def override(lad: Ladder, person: str, start: dt.datetime, end: dt.datetime, schedule: str = "primary-db") -> None:
    with lad.writes.transaction() as conn:
        conn.execute(sa.insert(ScheduleOverride.__table__).values(
            schedule=schedule, person=person, start_at=start, end_at=end, created_at=lad.clock.now(),
            created_by="test"))


def notifications(lad: Ladder) -> list[dict]:
    resp = lad.client.get("/api/v1/notifications")
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["notifications"]


def by_channel(lad: Ladder, kind: str = "firing") -> dict[str, dict]:
    found = [n for n in notifications(lad) if n["kind"] == kind]
    assert len({n["channel"] for n in found}) == len(found), found  # one message per channel
    return {n["channel"]: n for n in found}


def timeline(lad: Ladder, alert_id: int) -> list[dict]:
    return lad.client.get(f"/api/v1/alerts/{alert_id}").get_json()["timeline"]


def only_alert(lad: Ladder) -> int:
    [alert] = lad.client.get("/api/v1/alerts").get_json()["alerts"]
    return alert["id"]


def recipients(lad: Ladder, channel: str) -> list[Recipient | None]:
    return [m.recipient for m in lad.channels[channel].sent]


def test_a_schedule_target_pages_the_person_on_call_through_each_via_channel(lad):
    lad.post("g_routing_critical")  # severity critical: L1
    lad.deliver()
    alice = Recipient("alice", email="alice@example.org", phone="+4915550001", slack_user="U01ALICE",
                      source="rotation")
    assert recipients(lad, "sms-oncall") == [alice]
    assert recipients(lad, "email-oncall") == [alice]
    assert recipients(lad, "slack-critical") == [None]  # a plain channel: its own `to`, no person
    sent = by_channel(lad)
    assert {c: (n["target"], n["person"], n["person_source"], n["status"]) for c, n in sent.items()} == {
        "sms-oncall": ("schedule:primary-db", "alice", "rotation", "sent"),
        "email-oncall": ("schedule:primary-db", "alice", "rotation", "sent"),
        "slack-critical": (None, None, None, "sent"),
    }
    entries = [e for e in timeline(lad, only_alert(lad)) if e["kind"] == "notified"]
    lines = sorted(timeline_summary(e) for e in entries)
    assert lines == ["firing to email-oncall (alice, on call by rotation): sent after 1 attempt(s)",
                     "firing to slack-critical: sent after 1 attempt(s)",
                     "firing to sms-oncall (alice, on call by rotation): sent after 1 attempt(s)"]
    assert {e["details"]["channel"]: e["details"].get("person_source") for e in entries} == {
        "email-oncall": "rotation", "sms-oncall": "rotation", "slack-critical": None}
    page = lad.client.get(f"/alerts/{only_alert(lad)}").get_data(as_text=True)  # the dashboard's timeline
    assert "firing to sms-oncall (alice, on call by rotation): sent after 1 attempt(s)" in page


def test_the_rotation_hands_off_and_an_override_wins(lad):
    lad.clock.set(HANDOFF - dt.timedelta(seconds=1))
    lad.post(body_with("g_routing_critical", instance="before"))
    lad.deliver()
    lad.clock.set(HANDOFF)
    lad.post(body_with("g_routing_critical", instance="after"))
    lad.deliver()
    override(lad, "dave", HANDOFF + dt.timedelta(hours=1), HANDOFF + dt.timedelta(hours=2))
    lad.clock.set(HANDOFF + dt.timedelta(hours=1))
    lad.post(body_with("g_routing_critical", instance="override"))
    lad.deliver()
    assert [(r.name, r.source, r.email) for r in recipients(lad, "email-oncall")] == [
        ("alice", "rotation", "alice@example.org"), ("bob", "rotation", "bob@example.org"),
        ("dave", "override", "dave@example.org")]
    mails = sorted((n["id"], n["person"], n["person_source"]) for n in notifications(lad)
                   if n["channel"] == "email-oncall")
    assert [m[1:] for m in mails] == [("alice", "rotation"), ("bob", "rotation"), ("dave", "override")]


def test_a_retry_resolves_again_at_send_time(lad):
    lad.channels["sms-oncall"].errors = [DeliveryError("HTTP 503", retryable=True)]
    lad.post("g_routing_critical")
    lad.deliver()
    sms = by_channel(lad)["sms-oncall"]
    assert (sms["status"], sms["person"], sms["attempts"]) == ("failed", "alice", 1)
    override(lad, "bob", T0, T0 + dt.timedelta(hours=1))  # made while the retry waits
    lad.clock.advance(5)
    lad.deliver()
    sms = by_channel(lad)["sms-oncall"]
    assert (sms["status"], sms["person"], sms["person_source"], sms["attempts"]) == ("sent", "bob", "override", 2)
    assert [r.name for r in recipients(lad, "sms-oncall")] == ["bob"]


@pytest.mark.parametrize("how", ["api", "alertmanager"])
def test_the_resolution_notice_goes_to_the_person_paged_even_after_a_handoff(lad, how):
    lad.post("g_routing_critical")
    lad.deliver()
    alert_id = only_alert(lad)
    lad.clock.set(HANDOFF + dt.timedelta(hours=1))  # bob's week now; no tick ran: alice was the last paged
    if how == "api":
        resp = lad.client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"actor": "test"})
        assert resp.status_code == 200, resp.get_json()
    else:
        lad.post("g_routing_critical_resolved")  # the same occurrence, resolved by Alertmanager
    lad.deliver()
    assert [(m.kind, m.recipient.name, m.recipient.phone) for m in lad.channels["sms-oncall"].sent] == [
        ("firing", "alice", "+4915550001"), ("resolved", "alice", "+4915550001")]
    resolved = by_channel(lad, "resolved")
    assert (resolved["sms-oncall"]["target"], resolved["sms-oncall"]["person"]) == ("person:alice", "alice")
    assert (resolved["email-oncall"]["target"], resolved["email-oncall"]["person"]) == ("person:alice", "alice")
    assert resolved["slack-critical"]["target"] is None
    # Someone paged now reaches bob: the notice followed the page, not the schedule.
    lad.post(body_with("g_routing_critical", instance="later"))
    lad.deliver()
    assert lad.channels["sms-oncall"].sent[-1].recipient.name == "bob"


def test_an_acknowledgement_notice_and_repeats_follow_the_schedule(lad):
    lad.post("g_routing_critical")
    lad.deliver()
    lad.clock.set(HANDOFF + dt.timedelta(minutes=1))
    lad.step()  # the L1 repeat is long due: it pages whoever is on call now
    assert [(m.kind, m.recipient.name) for m in lad.channels["sms-oncall"].sent] == [("firing", "alice"),
                                                                                    ("repeat", "bob")]
    resp = lad.client.post(f"/api/v1/alerts/{only_alert(lad)}/ack", json={"actor": "bob"})
    assert resp.status_code == 200, resp.get_json()
    lad.deliver()
    assert lad.channels["sms-oncall"].sent[-1].kind == "acknowledged"
    assert lad.channels["sms-oncall"].sent[-1].recipient.name == "bob"  # the last one paged


def test_nobody_on_shift_is_a_dead_message_an_event_and_the_fallback(lad):
    lad.clock.set(HANDOFF)
    override(lad, "bob", T0, T0 + dt.timedelta(days=1), schedule="weekend")  # ended: changes nothing now
    lad.post(body_with("g_routing_critical", team="weekend"))
    lad.deliver()
    sms = by_channel(lad)["sms-oncall"]
    assert (sms["status"], sms["attempts"], sms["target"], sms["person"]) == ("dead", 0, "schedule:weekend", None)
    assert sms["last_error"] == "nobody on call for schedule weekend at 2026-11-30T08:00:00Z"
    assert lad.channels["sms-oncall"].sent == []
    assert [m.kind for m in lad.channels["chat"].sent] == ["firing"]  # the level's other channel
    [event] = [e for e in timeline(lad, only_alert(lad)) if e["kind"] == "nobody_on_call"]
    assert event["details"] == {
        "target": "schedule:weekend", "schedule": "weekend", "channels": ["sms-oncall"],
        "reason": "nobody on call for schedule weekend at 2026-11-30T08:00:00Z", "fallback": [],
        "then": "no fallback: the level's other channels were paged"}
    assert event["to_level"] == "L1" and event["actor"] == "engine"
    page = lad.client.get(f"/alerts/{only_alert(lad)}").get_data(as_text=True)
    assert "nobody to page for weekend via sms-oncall: nobody on call for schedule weekend" in page
    assert timeline_summary(event) == ("nobody to page for weekend via sms-oncall: nobody on call for schedule weekend"
                                       " at 2026-11-30T08:00:00Z; no fallback: the level's other channels were paged")
    assert lad.metrics.oncall_unresolved.labels(schedule="weekend")._value.get() == 1
    assert lad.metrics.oncall_unresolved.labels(schedule="primary-db")._value.get() == 0  # initialised


def test_nobody_with_the_address_a_channel_needs_falls_back_and_the_other_via_channel_still_pages(lad):
    override(lad, "dave", T0, T0 + dt.timedelta(hours=1))  # dave has an e-mail address but no phone
    lad.post("g_routing_critical")
    lad.deliver()
    sent = by_channel(lad)
    assert (sent["sms-oncall"]["status"], sent["sms-oncall"]["attempts"]) == ("dead", 0)
    assert sent["sms-oncall"]["last_error"] == ("nobody on call for schedule primary-db at 2026-11-23T09:00:00Z: "
                                                "dave has no phone for channel sms-oncall")
    assert (sent["email-oncall"]["status"], sent["email-oncall"]["person"]) == ("sent", "dave")
    assert (sent["fallback-chat"]["status"], sent["fallback-chat"]["target"]) == ("sent", None)
    assert [(m.kind, m.level, m.recipient) for m in lad.channels["fallback-chat"].sent] == [("firing", "L1", None)]
    [event] = [e for e in timeline(lad, only_alert(lad)) if e["kind"] == "nobody_on_call"]
    assert event["details"]["fallback"] == ["fallback-chat"]
    assert event["details"]["then"] == "paged the schedule's fallback instead: fallback-chat"
    assert lad.metrics.oncall_unresolved.labels(schedule="primary-db")._value.get() == 1
    # Delivered again (another engine, a retry of the batch): no second fallback, no second event.
    lad.deliver()
    assert len(lad.channels["fallback-chat"].sent) == 1
    assert len([e for e in timeline(lad, only_alert(lad)) if e["kind"] == "nobody_on_call"]) == 1


def test_every_via_channel_that_finds_nobody_makes_one_event_and_one_fallback(make_config, clock):
    schedules = {"empty": {"fallback": ["fallback-chat"],
                           "rotations": [{"participants": ["bob"], "length": "1w", "start": "2099-01-05"}]}}
    config = make_config(people=PEOPLE, schedules=schedules, channels=CHANNELS, routes=[
        {"levels": {"L1": [{"schedule": "empty", "via": ["sms-oncall", "email-oncall"]}], "L2": ["chat"],
                    "L3": ["chat"]}}])
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    lad = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
    try:
        lad.post("b_group_5_firing")
        lad.deliver()
        ids = [a["id"] for a in lad.client.get("/api/v1/alerts").get_json()["alerts"] if a["level"] == "L1"]
        assert ids
        for alert_id in ids:
            events = [e for e in timeline(lad, alert_id) if e["kind"] == "nobody_on_call"]
            assert [sorted(e["details"]["channels"]) for e in events] == [["email-oncall", "sms-oncall"]]
        [fallback] = [n for n in notifications(lad) if n["channel"] == "fallback-chat"]
        assert sorted(fallback["alert_ids"]) == sorted(ids) and fallback["status"] == "sent"
        assert {n["status"] for n in notifications(lad) if n["target"]} == {"dead"}
    finally:
        lad.close()
        app.extensions["alert_receiver"].db.dispose()


def test_a_person_target_pages_that_person_whoever_is_on_call(make_config, clock):
    config = make_config(people=PEOPLE, schedules=SCHEDULES, channels=CHANNELS, routes=[
        {"levels": {"L1": ["chat", {"person": "bob", "via": ["sms-oncall"]}], "L2": ["chat"], "L3": ["chat"]}}])
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    lad = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
    try:
        lad.post("g_routing_critical")
        lad.deliver()
        assert recipients(lad, "sms-oncall") == [Recipient("bob", email="bob@example.org", phone="+4915550002",
                                                           source="person")]
        sms = by_channel(lad)["sms-oncall"]
        assert (sms["target"], sms["person"], sms["person_source"]) == ("person:bob", "bob", "person")
    finally:
        lad.close()
        app.extensions["alert_receiver"].db.dispose()
