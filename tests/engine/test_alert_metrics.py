"""The metrics of the alerts dashboard (grafana/alert-receiver-alerts.json), on an injected clock (SQLite and
PostgreSQL):

- alert_receiver_time_to_acknowledge_seconds: one sample per occurrence, at its first ack, of first notification →
  ack (an unack and a second ack add none);
- alert_receiver_time_to_resolve_seconds: startsAt → endsAt when Alertmanager resolves, startsAt → now when resolved
  by hand;
- alert_receiver_open_alerts: the engine's count after a tick, by level, severity (configured ones, else "other")
  and service (top SERVICES, else "other"); a series that empties is set to 0, not left at its last value.
Every expected value is a hand count from the timeline of the test.
"""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.engine.open_alerts_gauge import SERVICES, bounded
from receiver.engine.runner import EngineRunner
from receiver.metrics import Metrics

from ..conftest import T0
from .harness import Ladder

CHANNELS = {"chat": {"type": "log"}}
ROUTE = {"levels": {"L1": ["chat"], "L2": ["chat"], "L3": ["chat"]}}


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def webhook(*alerts: dict) -> dict:
    return {"receiver": "alert-receiver", "status": "firing", "alerts": list(alerts), "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093", "version": "4",
            "groupKey": "{}:{alertname=\"Test\"}", "truncatedAlerts": 0}


def alert(instance: str, *, starts: dt.datetime, ends: dt.datetime | None = None, severity: str = "critical",
          service: str = "checkout", name: str = "DiskFull") -> dict:
    return {"status": "resolved" if ends else "firing",
            "labels": {"alertname": name, "severity": severity, "service": service, "instance": instance},
            "annotations": {}, "startsAt": starts.isoformat().replace("+00:00", "Z"),
            "endsAt": (ends.isoformat().replace("+00:00", "Z") if ends else "0001-01-01T00:00:00Z")}


@pytest.fixture
def receiver(make_config, clock):
    config = make_config(channels=CHANNELS, routes=[ROUTE])
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    lad = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
    yield app, lad
    lad.close()
    app.extensions["alert_receiver"].db.dispose()


def histogram(app, name: str) -> tuple[float, float]:
    registry = app.extensions["alert_receiver"].metrics.registry
    return (registry.get_sample_value(f"{name}_count"), registry.get_sample_value(f"{name}_sum"))


def ids_by_instance(client) -> dict[str, int]:
    return {a["labels"]["instance"]: a["id"] for a in client.get("/api/v1/alerts").get_json()["alerts"]}


def test_mtta_at_the_first_ack_and_mttr_at_each_resolution(receiver, clock):
    app, lad = receiver
    client = lad.client
    lad.post(webhook(alert("a", starts=at(-10)), alert("b", starts=at(-5))))
    lad.deliver()  # both first notified at T0
    ids = ids_by_instance(client)
    assert histogram(app, "alert_receiver_time_to_acknowledge_seconds") == (0, 0)

    clock.set(at(7))
    assert client.post(f"/api/v1/alerts/{ids['a']}/ack", json={"actor": "ann"}).status_code == 200
    assert histogram(app, "alert_receiver_time_to_acknowledge_seconds") == (1, 7 * 60)
    clock.set(at(8))
    assert client.post(f"/api/v1/alerts/{ids['a']}/unack", json={"actor": "ann"}).status_code == 200
    clock.set(at(9))
    assert client.post(f"/api/v1/alerts/{ids['a']}/ack", json={"actor": "bob"}).status_code == 200
    assert histogram(app, "alert_receiver_time_to_acknowledge_seconds") == (1, 7 * 60), "only the first ack counts"

    # Alertmanager resolves a: endsAt T0+30m, startsAt T0-10m -> 40 minutes, whenever the webhook arrives.
    clock.set(at(31))
    lad.post(webhook(alert("a", starts=at(-10), ends=at(30))))
    assert histogram(app, "alert_receiver_time_to_resolve_seconds") == (1, 40 * 60)
    lad.post(webhook(alert("a", starts=at(-10), ends=at(30))))  # a repeat of the same resolution
    assert histogram(app, "alert_receiver_time_to_resolve_seconds") == (1, 40 * 60)

    # b by hand at T0+40m: startsAt T0-5m -> 45 minutes.
    clock.set(at(40))
    assert client.post(f"/api/v1/alerts/{ids['b']}/resolve", json={"actor": "ann"}).status_code == 200
    assert histogram(app, "alert_receiver_time_to_resolve_seconds") == (2, 40 * 60 + 45 * 60)
    assert histogram(app, "alert_receiver_time_to_acknowledge_seconds") == (1, 7 * 60)

    text = client.get("/metrics").get_data(as_text=True)
    assert 'alert_receiver_time_to_resolve_seconds_bucket{le="3600.0"} 2.0' in text
    assert 'alert_receiver_time_to_resolve_seconds_bucket{le="1800.0"} 0.0' in text


def test_open_alerts_are_folded_onto_bounded_label_sets() -> None:
    # 22 services: s00 has 23 alerts, s01 22, ... s21 2; the top SERVICES (20) by count are s00..s19.
    rows = [("L1", "critical", f"s{i:02d}", 23 - i) for i in range(22)]
    rows += [("L2", "page", "s00", 4), ("L3", "", "s21", 1)]
    folded = bounded(rows, {"critical": None, "warning": None, "info": None})
    assert SERVICES == 20
    expected = {("L1", "critical", f"s{i:02d}"): 23 - i for i in range(20)}
    expected[("L1", "critical", "other")] = 3 + 2  # s20 and s21
    expected[("L2", "other", "s00")] = 4  # an unconfigured severity
    expected[("L3", "other", "other")] = 1
    assert folded == expected
    assert sum(folded.values()) == sum(n for *_, n in rows)
    # ties are broken by name, so the published set does not flap
    assert set(bounded([("L1", "critical", s, 1) for s in ("b", "a", "c")], {"critical"}, services=2)) == {
        ("L1", "critical", "a"), ("L1", "critical", "b"), ("L1", "critical", "other")}


def test_the_engine_tick_sets_the_open_alerts_gauge_and_zeroes_what_emptied(receiver, clock):
    app, lad = receiver
    registry = CollectorRegistry()
    runner = EngineRunner(lad.config, lad.writes, metrics=Metrics(registry), clock=clock)
    try:
        lad.post(webhook(alert("a", starts=at(-1)), alert("b", starts=at(-1)),
                         alert("c", starts=at(-1), severity="warning", service="search"),
                         alert("d", starts=at(-1), severity="page", service="batch")))
        runner.tick_once()

        def value(level, severity, service):
            return registry.get_sample_value("alert_receiver_open_alerts",
                                             {"level": level, "severity": severity, "service": service})

        assert value("L1", "critical", "checkout") == 2
        assert value("L2", "warning", "search") == 1
        assert value("L3", "other", "batch") == 1  # unknown severity: the default level, severity "other"
        assert value("L1", "other", "other") == 0  # initialised, nothing there

        clock.set(at(5))
        lad.post(webhook(alert("a", starts=at(-1), ends=at(4)), alert("b", starts=at(-1), ends=at(4))))
        runner.tick_once()
        assert value("L1", "critical", "checkout") == 0, "an emptied series reads 0, not its last value"
        assert value("L2", "warning", "search") == 1
    finally:
        runner.dispatcher.close()
