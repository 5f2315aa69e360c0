"""The escalation ladder with an injected clock (no sleeps): L3 at once, L2 after 5 min, L1 15 min later, repeats
every 15 min; acks stop it, acks with a ttl resume it, resolution reaches exactly the channels told, route
overrides change timings and channels. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app

from .harness import Heard, Ladder, body_with

CHANNELS = {"info-chat": {"type": "log"}, "warn-chat": {"type": "log"}, "warn-mail": {"type": "log"},
            "pager": {"type": "log"}, "db-pager": {"type": "log"},
            "pd": {"type": "pagerduty", "routing_key": "k" * 32}}
DEFAULT_ROUTE = {"levels": {"L3": ["info-chat"], "L2": ["warn-chat", "warn-mail"], "L1": ["pager", "pd"]}}
DB_ROUTE = {"matchers": ['team="db"'], "levels": {"L1": ["db-pager"]},
            "escalation": {"L3": {"escalate_after": "2m"}, "L1": {"repeat_every": "30m"}}}

INFO = ("HighErrorRate",)


@pytest.fixture
def ladder(make_config, clock):
    apps = []

    def make(routes=(DEFAULT_ROUTE,), **sections):
        config = make_config(channels=CHANNELS, routes=list(routes), **sections)
        app = create_app(config, clock=clock, registry=CollectorRegistry())
        apps.append(app)
        return Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)

    yield make
    for app in apps:
        app.extensions["alert_receiver"].db.dispose()


def alert_id(ladder: Ladder) -> int:
    alerts = ladder.client.get("/api/v1/alerts").get_json()["alerts"]
    assert len(alerts) == 1
    return alerts[0]["id"]


def test_info_alert_climbs_the_ladder_then_repeats_at_l1(ladder):
    lad = ladder()
    lad.post("g_routing_info")
    assert lad.step() == [Heard("info-chat", "firing", "L3", INFO)]  # at once, by the webhook's own outbox row
    assert lad.step(4.9) == []
    assert lad.step(0.1) == [Heard("warn-chat", "escalated", "L2", INFO), Heard("warn-mail", "escalated", "L2", INFO)]
    assert lad.step(14.9) == []
    assert lad.step(0.1) == [Heard("pager", "escalated", "L1", INFO), Heard("pd", "escalated", "L1", INFO)]
    for _ in range(3):
        assert lad.step(14.9) == []
        assert lad.step(0.1) == [Heard("pager", "repeat", "L1", INFO), Heard("pd", "repeat", "L1", INFO)]
    timeline = [e["kind"] for e in lad.client.get(f"/api/v1/alerts/{alert_id(lad)}").get_json()["timeline"]]
    assert timeline.count("escalated") == 2 and timeline.count("repeated") == 3
    lad.close()


@pytest.mark.parametrize("ack_after_minutes", [1, 6, 25], ids=["at-L3", "at-L2", "at-L1"])
def test_ack_at_any_level_stops_everything(ladder, ack_after_minutes):
    lad = ladder()
    lad.post("g_routing_info")
    lad.step()
    for _ in range(ack_after_minutes):
        lad.step(1)
    resp = lad.client.post(f"/api/v1/alerts/{alert_id(lad)}/ack", json={"actor": "alice", "comment": "on it"})
    assert resp.status_code == 200 and resp.get_json()["changed"] is True
    acked = lad.step()
    assert {h.kind for h in acked} == {"acknowledged"}  # told channels hear the ack, nobody new is paged
    for _ in range(12):  # three hours
        assert lad.step(15) == []
    alert = lad.client.get(f"/api/v1/alerts/{alert_id(lad)}").get_json()
    assert alert["acked_by"] == "alice"
    lad.close()


def test_ack_with_ttl_resumes_escalation(ladder):
    lad = ladder()
    lad.post("g_routing_info")
    lad.step()
    resp = lad.client.post(f"/api/v1/alerts/{alert_id(lad)}/ack", json={"ttl": "10m"})
    assert resp.status_code == 200
    assert [h.kind for h in lad.step()] == ["acknowledged"]
    assert lad.step(9.9) == []
    # The ack expires: the current level (L3) is told again and its 5-minute timer restarts.
    assert lad.step(0.1) == [Heard("info-chat", "repeat", "L3", INFO)]
    assert lad.step(4.9) == []
    assert [h.channel for h in lad.step(0.1)] == ["warn-chat", "warn-mail"]
    lad.close()


def test_resolve_tells_exactly_the_channels_that_were_told(ladder):
    lad = ladder()
    lad.post("g_routing_info")
    lad.step()
    lad.step(5)  # L2: warn-chat, warn-mail
    aid = next(a["id"] for a in lad.client.get("/api/v1/alerts?severity=info").get_json()["alerts"])
    resp = lad.client.post(f"/api/v1/alerts/{aid}/resolve", json={"actor": "bob"})
    assert resp.status_code == 200
    heard = lad.step()
    assert heard == [Heard("info-chat", "resolved", "L2", INFO), Heard("warn-chat", "resolved", "L2", INFO),
                     Heard("warn-mail", "resolved", "L2", INFO)]
    assert lad.step(60) == []  # nothing after resolution
    lad.close()


def test_resolved_webhook_tells_the_told_channels(ladder):
    lad = ladder()
    lad.post("g_routing_critical")
    assert lad.step() == [Heard("pager", "firing", "L1", INFO), Heard("pd", "firing", "L1", INFO)]
    lad.post("g_routing_critical_resolved")
    assert lad.step() == [Heard("pager", "resolved", "L1", INFO), Heard("pd", "resolved", "L1", INFO)]
    assert lad.step(60) == []
    lad.close()


def test_route_override_changes_timers_and_channels(ladder):
    lad = ladder(routes=(DB_ROUTE, DEFAULT_ROUTE))
    lad.post(body_with("g_routing_info", team="db"))
    assert lad.step() == [Heard("info-chat", "firing", "L3", INFO)]  # inherited from the default route
    assert lad.step(1.9) == []
    assert [h.channel for h in lad.step(0.1)] == ["warn-chat", "warn-mail"]  # 2 min, not 5
    assert lad.step(15) == [Heard("db-pager", "escalated", "L1", INFO)]  # the db route's L1, not pager + pd
    assert lad.step(15) == []  # repeats every 30 min on this route
    assert lad.step(15) == [Heard("db-pager", "repeat", "L1", INFO)]
    lad.close()


def test_group_reaching_a_level_together_is_one_message_per_channel(ladder):
    lad = ladder(routes=({"levels": {"L3": ["info-chat"], "L2": ["warn-chat"], "L1": ["pager", "pd"]}},))
    lad.post("b_group_5_firing")  # five critical alerts of one group → L1 at once
    heard = lad.step()
    pager = [h for h in heard if h.channel == "pager"]
    assert len(pager) == 1 and len(pager[0].alerts) == 5  # grouped
    assert len([h for h in heard if h.channel == "pd"]) == 5  # PagerDuty: one event per occurrence
    repeat = lad.step(15)
    assert len([h for h in repeat if h.channel == "pager"]) == 1
    lad.close()


def test_ticks_are_idempotent_and_a_duplicate_webhook_creates_no_intent(ladder):
    lad = ladder()
    lad.post("g_routing_info")
    lad.post("g_routing_info")
    assert [h.kind for h in lad.step()] == ["firing"]
    lad.clock.advance(5 * 60)
    first = lad.tick()
    second = lad.tick()
    assert sum(first.escalations.values()) == 1 and second.changed == 0
    lad.deliver()
    assert [h.kind for h in lad.heard()] == ["escalated", "escalated"]
    lad.close()


def test_manual_escalate_and_unack(ladder):
    lad = ladder()
    lad.post("g_routing_info")
    lad.step()
    aid = alert_id(lad)
    resp = lad.client.post(f"/api/v1/alerts/{aid}/escalate", json={"level": "L1", "actor": "carol"})
    assert resp.status_code == 200 and resp.get_json()["alert"]["level"] == "L1"
    assert lad.step() == [Heard("pager", "escalated", "L1", INFO), Heard("pd", "escalated", "L1", INFO)]
    assert lad.client.post(f"/api/v1/alerts/{aid}/escalate").status_code == 409  # L1 is the top
    lad.client.post(f"/api/v1/alerts/{aid}/ack")
    lad.step()
    assert lad.step(30) == []
    resp = lad.client.post(f"/api/v1/alerts/{aid}/unack", json={"comment": "not fixed after all"})
    assert resp.status_code == 200 and resp.get_json()["changed"] is True
    assert lad.step() == [Heard("pager", "repeat", "L1", INFO), Heard("pd", "repeat", "L1", INFO)]
    assert lad.step(15) == [Heard("pager", "repeat", "L1", INFO), Heard("pd", "repeat", "L1", INFO)]
    lad.close()


def test_lifecycle_errors(ladder):
    lad = ladder()
    assert lad.client.post("/api/v1/alerts/999/ack").status_code == 404
    lad.post("g_routing_critical")
    lad.post("g_routing_critical_resolved")
    aid = alert_id(lad)
    for action in ("ack", "unack", "resolve", "escalate"):
        resp = lad.client.post(f"/api/v1/alerts/{aid}/{action}")
        assert resp.status_code == 409, action
        assert resp.get_json()["error"] == "resolved"
    assert lad.client.post(f"/api/v1/alerts/{aid}/ack", data="{", content_type="application/json").status_code == 400
    assert lad.client.post(f"/api/v1/alerts/{aid}/ack", json={"bogus": 1}).status_code == 400
    lad.close()


def test_group_ack_acks_every_open_occurrence_of_the_group(ladder):
    lad = ladder()
    doc = lad.post("b_group_5_firing")
    assert doc["new"] == 5
    import json as _json
    from tests.support.fixtures import raw
    group_key = _json.loads(raw("b_group_5_firing"))["groupKey"]
    resp = lad.client.post("/api/v1/groups/ack", json={"group_key": group_key, "actor": "dave"})
    assert resp.status_code == 200 and len(resp.get_json()["acked"]) == 5
    lad.step()
    lad.heard()
    assert lad.step(60) == []
    lad.close()


def test_first_notified_and_first_acked_survive_unack_for_mtta(ladder):
    lad = ladder()
    lad.post("g_routing_info")
    lad.step(0.5)  # sent at T0 + 30 s
    aid = alert_id(lad)
    lad.clock.advance(90)
    lad.client.post(f"/api/v1/alerts/{aid}/ack")
    lad.clock.advance(60)
    lad.client.post(f"/api/v1/alerts/{aid}/unack")
    lad.step(5)
    lad.client.post(f"/api/v1/alerts/{aid}/ack")
    alert = lad.client.get(f"/api/v1/alerts/{aid}").get_json()
    assert alert["first_notified_at"] == "2026-11-23T09:00:30Z"
    assert alert["first_acked_at"] == "2026-11-23T09:02:00Z"
    lad.close()
