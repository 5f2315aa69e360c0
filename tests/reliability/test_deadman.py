"""The dead-man's switch with an injected clock: a Watchdog webhook arms it; silence past deadman.timeout raises
one AlertingPipelineDown at L1 through the L1 channels; the Watchdog's return resolves it. Every test runs on SQLite
and PostgreSQL, with the genuine captured webhook turned into a Watchdog."""

from __future__ import annotations

import json
import threading

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from receiver.app import build_db, create_app
from receiver.engine import deadman
from receiver.engine.runner import EngineRunner
from receiver.metrics import Metrics
from receiver.store.write_port import DirectWrites

from ..engine.harness import Heard, Ladder, body_with

CHANNELS = {"chat": {"type": "log"}, "mail": {"type": "log"}, "pager": {"type": "log"}}
ROUTES = [{"name": "watchdog", "matchers": ['alertname="Watchdog"'], "escalate": False},
          {"levels": {"L3": ["chat"], "L2": ["mail"], "L1": ["pager"]}}]
DOWN = (deadman.ALERTNAME,)


def watchdog_body(status: str = "firing") -> bytes:
    """The captured single-alert webhook, as Alertmanager sends the Watchdog on its own route."""
    doc = body_with("a_single_firing", alertname="Watchdog", severity="none", service="alerting-pipeline")
    doc["groupLabels"] = {"alertname": "Watchdog"}
    doc["groupKey"] = '{}/{alertname="Watchdog"}:{alertname="Watchdog"}'
    if status == "resolved":
        doc["status"] = "resolved"
        for alert in doc["alerts"]:
            alert["status"] = "resolved"
            alert["endsAt"] = alert["startsAt"]
    return json.dumps(doc).encode()


@pytest.fixture
def receiver(make_config, clock):
    apps = []

    def make(**sections):
        config = make_config(channels=CHANNELS, routes=ROUTES, **sections)
        app = create_app(config, clock=clock, registry=CollectorRegistry())
        apps.append(app)
        return Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)

    yield make
    for app in apps:
        app.extensions["alert_receiver"].db.dispose()


def check(lad: Ladder, minutes: float = 0) -> deadman.DeadmanResult:
    """Advance the clock, run the dead-man check, a tick and delivery (an engine pass)."""
    lad.clock.advance(minutes * 60)
    result = deadman.check(lad.writes, lad.config, lad.clock.now())
    lad.tick()
    lad.deliver()
    return result


def pipeline_down(lad: Ladder) -> list[dict]:
    return lad.client.get("/api/v1/alerts", query_string={"alertname": deadman.ALERTNAME}).get_json()["alerts"]


def test_never_seen_watchdog_raises_nothing(receiver):
    lad = receiver()
    for _ in range(4):
        result = check(lad, 60)
        assert (result.armed, result.down) == (False, False)
    assert pipeline_down(lad) == [] and lad.heard() == []
    lad.close()


def test_silence_past_the_timeout_pages_l1_once_and_the_watchdog_resolves_it(receiver):
    lad = receiver()
    lad.post(watchdog_body())
    assert lad.heard() == []  # the Watchdog itself is never notified (its route has escalate: false)
    assert check(lad, 4.9).down is False
    assert pipeline_down(lad) == []

    result = check(lad, 0.2)  # 5.1 minutes after the last Watchdog
    assert (result.armed, result.down, result.raised) == (True, True, True)
    assert lad.heard() == [Heard("pager", "firing", "L1", DOWN)]
    [alert] = pipeline_down(lad)
    assert (alert["status"], alert["level"], alert["labels"]["severity"]) == ("firing", "L1", "critical")
    assert alert["source"] == deadman.SOURCE
    assert "No Watchdog alert for 5m" in alert["annotations"]["summary"]

    for _ in range(3):  # later checks change nothing: one occurrence, no second page before L1's repeat
        assert check(lad, 1).raised is False
    assert lad.heard() == [] and len(pipeline_down(lad)) == 1

    lad.post(watchdog_body())  # Alertmanager's repeat: byte-identical, same startsAt — and it counts
    result = check(lad)
    assert (result.down, result.resolved) == (False, True)
    assert lad.heard() == [Heard("pager", "resolved", "L1", DOWN)]
    [alert] = pipeline_down(lad)
    assert alert["status"] == "resolved"
    timeline = [e["kind"] for e in lad.client.get(f"/api/v1/alerts/{alert['id']}").get_json()["timeline"]]
    assert timeline.count("received") == 1 and timeline.count("resolved") == 1

    # Silent again: a second occurrence of the same fingerprint, paged again.
    assert check(lad, 5.1).raised is True
    assert lad.heard() == [Heard("pager", "firing", "L1", DOWN)]
    assert [a["status"] for a in pipeline_down(lad)] == ["firing", "resolved"]
    lad.close()


def test_repeats_of_the_same_watchdog_keep_it_quiet(receiver):
    """Alertmanager re-sends the Watchdog every repeat_interval with its original startsAt: last seen is the
    receipt, so an hour of repeats every 2 minutes never trips a 5-minute switch."""
    lad = receiver()
    for _ in range(30):
        lad.post(watchdog_body())
        assert check(lad, 2).down is False
    assert pipeline_down(lad) == []
    lad.close()


def test_a_resolved_watchdog_is_not_a_sign_of_life(receiver):
    lad = receiver()
    lad.post(watchdog_body())
    check(lad, 3)
    lad.post(watchdog_body("resolved"))  # Prometheus stopped sending it: Alertmanager resolved it
    assert check(lad, 2.1).raised is True
    lad.close()


def test_enabled_true_arms_without_a_watchdog(receiver):
    armed = receiver(deadman={"enabled": True, "timeout": "2m"})
    assert check(armed).armed is True  # armed now; silent since
    assert check(armed, 1.9).down is False
    assert check(armed, 0.2).raised is True
    armed.post(watchdog_body())  # the first Watchdog ever resolves it
    assert check(armed).resolved is True
    armed.close()


def test_enabled_false_never_fires(receiver):
    off = receiver(deadman={"enabled": False})
    off.post(watchdog_body())
    assert check(off, 60).armed is False and pipeline_down(off) == []
    off.close()


def test_custom_alertname_and_a_mapping_without_critical_still_give_l1(receiver):
    lad = receiver(deadman={"alertname": "Heartbeat", "timeout": "1m"},
                   levels={"severity": {"page": "L1", "ticket": "L2"}})
    doc = json.loads(watchdog_body())
    doc["alerts"][0]["labels"]["alertname"] = "Heartbeat"
    lad.post(doc)
    assert check(lad, 1.1).raised is True
    [alert] = pipeline_down(lad)
    assert (alert["level"], alert["labels"]["severity"]) == ("L1", "page")
    # (The Heartbeat itself took the default route: this config has no escalate: false route for it.)
    assert [h for h in lad.heard() if h.alerts == DOWN] == [Heard("pager", "firing", "L1", DOWN)]
    lad.close()


def test_two_engines_checking_at_once_write_one_alert_and_one_page(receiver):
    lad = receiver()
    lad.post(watchdog_body())
    lad.clock.advance(6 * 60)
    engines = [build_db(lad.config) for _ in range(3)]  # own pools, as separate engine processes would have
    barrier = threading.Barrier(len(engines))
    results, errors = [], []

    def run(db):
        try:
            barrier.wait()
            results.append(deadman.check(DirectWrites(db), lad.config, lad.clock.now()))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(db,)) for db in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sum(r.raised for r in results) == 1 and all(r.down for r in results)
    lad.deliver()
    assert lad.heard() == [Heard("pager", "firing", "L1", DOWN)]
    with lad.db.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM alerts WHERE alertname = :n"), {"n": deadman.ALERTNAME}) == 1
        assert conn.scalar(sa.text("SELECT count(*) FROM notification_items")) == 1
    for db in engines:
        db.dispose()
    lad.close()


def test_engine_metrics_show_last_seen_and_the_down_state(receiver):
    lad = receiver()
    runner = EngineRunner(lad.config, lad.writes, metrics=Metrics(CollectorRegistry()), clock=lad.clock)
    registry = runner.metrics.registry
    seen_at = lad.clock.now()
    lad.post(watchdog_body())
    runner.deadman_once()
    assert registry.get_sample_value("alert_receiver_watchdog_last_seen_timestamp_seconds") == seen_at.timestamp()
    assert registry.get_sample_value("alert_receiver_alerting_pipeline_down") == 0
    lad.clock.advance(301)
    runner.deadman_once()
    assert registry.get_sample_value("alert_receiver_alerting_pipeline_down") == 1
    runner.dispatcher.close()
    lad.close()


def test_the_watchdog_is_never_notified_even_without_an_escalate_false_route(make_config, clock):
    """docs/design.md: the Watchdog is never escalated or notified, whatever the routes say; here the only route would
    page it at L3 and climb."""
    config = make_config(channels=CHANNELS, routes=[{"levels": {"L3": ["chat"], "L2": ["mail"], "L1": ["pager"]}}])
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    lad = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
    try:
        lad.post(watchdog_body())
        lad.post(body_with("a_single_firing", severity="info"))  # an ordinary alert on the same route is paged
        for _ in range(6):
            lad.clock.advance(10 * 60)
            lad.tick()
            lad.deliver()
        [watchdog] = lad.client.get("/api/v1/alerts", query_string={"alertname": "Watchdog"}).get_json()["alerts"]
        assert watchdog["status"] == "firing" and watchdog["level"] == "L3"
        heard = lad.heard()
        assert {h.level for h in heard} == {"L3", "L2", "L1"}  # the ordinary alert climbed and was paged
        assert not [h for h in heard if any(a.startswith("Watchdog") for a in h.alerts)], heard
    finally:
        lad.close()
        app.extensions["alert_receiver"].db.dispose()
