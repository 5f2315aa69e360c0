"""The reconciler's decision as a case table, and reconcile_once against Alertmanager's API faked with `responses`
(real database, both backends; genuine captured webhooks stored first): absent alerts resolved with the reason and
resolution notices, silenced ones acknowledged, nothing touched unless every Alertmanager answered."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests
import responses
from prometheus_client import CollectorRegistry

from receiver.alertmanager_api import AlertmanagerClient, ListedAlert
from receiver.app import create_app
from receiver.engine import deadman
from receiver.engine.reconcile import SILENCE_ACTOR, Listing, StoredFiring, decide, reconcile_once
from receiver.engine.runner import EngineRunner
from receiver.metrics import Metrics

from ..engine.harness import Heard, Ladder
from ..support.fixtures import raw

AM1, AM2 = "http://am-1.test:9093", "http://am-2.test:9093"
T = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)
OLD, YOUNG = T - dt.timedelta(minutes=10), T - dt.timedelta(seconds=30)
BEFORE = T - dt.timedelta(minutes=2)


def stored(id_, fp, received=OLD, acked_by=None):
    return StoredFiring(id_, fp, received, acked_by is not None, acked_by)


def listed(fp, *silences, inhibited=()):
    return ListedAlert(fp, "suppressed" if silences or inhibited else "active", tuple(silences), tuple(inhibited))


CASES = [
    ("absent-and-old-is-resolved", [stored(1, "a")], [], set(), ([1], {}, [])),
    ("absent-but-just-received-waits", [stored(1, "a", received=YOUNG)], [], set(), ([], {}, [])),
    ("listed-active-stays", [stored(1, "a")], [listed("a")], set(), ([], {}, [])),
    ("inhibited-stays-and-is-not-acked", [stored(1, "a")], [listed("a", inhibited=("f00d",))], set(), ([], {}, [])),
    ("silenced-by-a-person-is-acked", [stored(1, "a"), stored(2, "b")], [listed("a", "s1"), listed("b", "s1")], set(),
     ([], {"s1": [1, 2]}, [])),
    ("silenced-and-already-acked-is-left", [stored(1, "a", acked_by="alice")], [listed("a", "s1")], set(),
     ([], {}, [])),
    ("silenced-by-our-own-ack-silence-is-not-a-person", [stored(1, "a", acked_by="alice")], [listed("a", "ours")],
     {"ours"}, ([], {}, [])),
    ("silence-gone-while-firing-is-unacked", [stored(1, "a", acked_by=SILENCE_ACTOR)], [listed("a")], set(),
     ([], {}, [1])),
    ("a-persons-ack-is-never-undone", [stored(1, "a", acked_by="alice")], [listed("a")], set(), ([], {}, [])),
    ("silenced-mirror-ack-that-ended-is-resolved-not-unacked", [stored(1, "a", acked_by=SILENCE_ACTOR)], [], set(),
     ([1], {}, [])),
]


@pytest.mark.parametrize("stored_set, answer, ours, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decide(stored_set, answer, ours, expected):
    drift = decide(stored_set, Listing.merge([answer]), ours=ours, received_before=BEFORE)
    assert (drift.absent, drift.silenced, drift.unsilenced) == expected


def test_listing_is_the_union_of_an_ha_pair():
    merged = Listing.merge([[listed("a"), listed("b", "s1")], [listed("b", "s2"), listed("c")]])
    assert dict(merged.silenced_by) == {"a": frozenset(), "b": frozenset({"s1", "s2"}), "c": frozenset()}


# --- reconcile_once against a faked Alertmanager API ----------------------------------------------------------------

CHANNELS = {"chat": {"type": "log"}, "pager": {"type": "log"}}
ROUTES = [{"levels": {"L3": ["chat"], "L2": ["chat"], "L1": ["pager"]}}]


@pytest.fixture
def lad(make_config, clock):
    config = make_config(channels=CHANNELS, routes=ROUTES,
                         reconcile={"alertmanagers": [AM1, AM2], "grace": "2m", "interval": "1m"})
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    ladder = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
    yield ladder
    ladder.close()
    app.extensions["alert_receiver"].db.dispose()


def fake_alertmanager(rsps, url, alerts, *, started=T - dt.timedelta(hours=1), status=200):
    rsps.get(f"{url}/api/v2/status", json={"uptime": started.isoformat().replace("+00:00", ".123456789Z")})
    rsps.get(f"{url}/api/v2/alerts", json=alerts, status=status)


def am_alert(fp, *silenced_by):
    return {"fingerprint": fp, "labels": {}, "status": {"state": "suppressed" if silenced_by else "active",
                                                         "silencedBy": list(silenced_by), "inhibitedBy": []}}


def group_fingerprints() -> list[str]:
    return sorted(a["fingerprint"] for a in json.loads(raw("b_group_5_firing"))["alerts"])


def run(lad: Ladder):
    client = AlertmanagerClient(requests.Session(), timeout=2)
    return reconcile_once(lad.writes, lad.config, client, lad.clock.now())


def by_fingerprint(lad: Ladder) -> dict[str, dict]:
    return {a["fingerprint"]: a for a in lad.client.get("/api/v1/alerts").get_json()["alerts"]}


def test_absent_alerts_resolve_with_the_reason_and_silenced_ones_are_acked(lad):
    lad.post("b_group_5_firing")
    lad.deliver()
    told = lad.heard()
    assert len(told) == 1 and len(told[0].alerts) == 5
    fps = group_fingerprints()
    lad.clock.advance(5 * 60)
    with responses.RequestsMock() as rsps:
        # am-1 lists two (one of them silenced by a person); am-2, its HA peer, lists one more: three are gone.
        fake_alertmanager(rsps, AM1, [am_alert(fps[0]), am_alert(fps[1], "5e1e5ce0-0000-4000-8000-000000000001")])
        fake_alertmanager(rsps, AM2, [am_alert(fps[0]), am_alert(fps[2])])
        result = run(lad)
        assert [c.request.params for c in rsps.calls if c.request.url.startswith(f"{AM1}/api/v2/alerts")] == [
            {"active": "true", "silenced": "true", "inhibited": "true", "unprocessed": "true"}]
    assert result.complete and len(result.resolved) == 2 and len(result.acked) == 1
    alerts = by_fingerprint(lad)
    assert [alerts[fp]["status"] for fp in fps] == ["firing", "firing", "firing", "resolved", "resolved"]
    assert alerts[fps[1]]["acked_by"] == SILENCE_ACTOR
    for fp in fps[3:]:
        assert alerts[fp]["resolved_by"] == "reconciler"
        [event] = [e for e in lad.client.get(f"/api/v1/alerts/{alerts[fp]['id']}").get_json()["timeline"]
                   if e["kind"] == "resolved"]
        assert event["comment"] == f"reconciled: absent from alertmanager {AM1}, {AM2}"
        assert event["actor"] == "reconciler"
    lad.deliver()
    heard = lad.heard()
    assert sorted((h.channel, h.kind, len(h.alerts)) for h in heard) == [("pager", "acknowledged", 1),
                                                                          ("pager", "resolved", 2)]

    with responses.RequestsMock() as rsps:  # the next poll finds nothing more to do
        fake_alertmanager(rsps, AM1, [am_alert(fps[0]), am_alert(fps[1], "5e1e5ce0-0000-4000-8000-000000000001")])
        fake_alertmanager(rsps, AM2, [am_alert(fps[2])])
        again = run(lad)
    assert again.complete and (again.resolved, again.acked, again.unacked) == ([], [], [])

    with responses.RequestsMock() as rsps:  # the person's silence ended while it still fires: paged again
        fake_alertmanager(rsps, AM1, [am_alert(fps[0]), am_alert(fps[1])])
        fake_alertmanager(rsps, AM2, [am_alert(fps[2])])
        later = run(lad)
    assert later.unacked == [alerts[fps[1]]["id"]]
    assert by_fingerprint(lad)[fps[1]]["acked_at"] is None


@pytest.mark.parametrize("failure", ["am2-answers-500", "am2-unreachable", "am1-just-restarted"])
def test_nothing_changes_unless_every_alertmanager_answered_and_is_old_enough(lad, failure):
    lad.post("b_group_5_firing")
    lad.clock.advance(5 * 60)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        if failure == "am1-just-restarted":
            fake_alertmanager(rsps, AM1, [], started=lad.clock.now() - dt.timedelta(seconds=20))
            fake_alertmanager(rsps, AM2, [])
        else:
            fake_alertmanager(rsps, AM1, [])
            if failure == "am2-answers-500":
                fake_alertmanager(rsps, AM2, {"error": "boom"}, status=500)
            else:
                rsps.get(f"{AM2}/api/v2/status", body=requests.ConnectionError("refused"))
        result = run(lad)
    assert result.complete is False and result.reason
    assert {a["status"] for a in by_fingerprint(lad).values()} == {"firing"}


def test_a_just_received_alert_survives_a_stale_poll(lad):
    lad.post("b_group_5_firing")
    lad.clock.advance(60)  # within reconcile.grace
    with responses.RequestsMock() as rsps:
        fake_alertmanager(rsps, AM1, [])
        fake_alertmanager(rsps, AM2, [])
        assert run(lad).resolved == []
    assert {a["status"] for a in by_fingerprint(lad).values()} == {"firing"}


def test_the_dead_mans_own_alert_is_left_alone(lad):
    lad.config = lad.config.model_copy(update={"deadman": lad.config.deadman.model_copy(update={"enabled": True})})
    deadman.check(lad.writes, lad.config, lad.clock.now())
    lad.clock.advance(10 * 60)
    assert deadman.check(lad.writes, lad.config, lad.clock.now()).raised
    lad.clock.advance(10 * 60)
    with responses.RequestsMock() as rsps:
        fake_alertmanager(rsps, AM1, [])
        fake_alertmanager(rsps, AM2, [])
        assert run(lad).resolved == []
    [alert] = by_fingerprint(lad).values()
    assert (alert["labels"]["alertname"], alert["status"]) == (deadman.ALERTNAME, "firing")


def test_engine_counts_drift_and_the_last_success(lad):
    lad.post("a_single_firing")
    lad.clock.advance(5 * 60)
    runner = EngineRunner(lad.config, lad.writes, metrics=Metrics(CollectorRegistry()), clock=lad.clock,
                          http=requests.Session())
    registry = runner.metrics.registry
    with responses.RequestsMock() as rsps:
        fake_alertmanager(rsps, AM1, [])
        fake_alertmanager(rsps, AM2, {"error": "boom"}, status=503)
        runner.reconcile_once()
    assert registry.get_sample_value("alert_receiver_reconcile_errors_total") == 1
    assert registry.get_sample_value("alert_receiver_reconcile_last_success_timestamp_seconds") == 0
    with responses.RequestsMock() as rsps:
        fake_alertmanager(rsps, AM1, [])
        fake_alertmanager(rsps, AM2, [])
        runner.reconcile_once()
    assert registry.get_sample_value("alert_receiver_reconcile_drift_total", {"kind": "absent"}) == 1
    assert registry.get_sample_value("alert_receiver_reconcile_last_success_timestamp_seconds") > 0
    runner.dispatcher.close()
