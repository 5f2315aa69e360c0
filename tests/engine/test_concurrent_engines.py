"""Several engines on one database at once (PostgreSQL: SKIP LOCKED claims; SQLite: one writer): over 1,000
alerts, every escalation and every notification intent happens exactly once, and every message is sent once."""

from __future__ import annotations

import collections
import json
import threading

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from receiver.app import build_db, create_app
from receiver.engine.delivery import Dispatcher
from receiver.engine.tick import tick
from receiver.store.write_port import DirectWrites

from ..support.fixtures import raw
from .harness import RecordingChannel

ENGINES = 3
GROUPS, PER_GROUP = 10, 100


def storm_bodies() -> list[bytes]:
    """1,000 info alerts in 10 groups, built from a genuine captured group body."""
    template = json.loads(raw("b_group_5_firing"))
    bodies = []
    for g in range(GROUPS):
        doc = json.loads(json.dumps(template))
        proto = doc["alerts"][0]
        doc["alerts"] = []
        for i in range(PER_GROUP):
            alert = json.loads(json.dumps(proto))
            alert["labels"].update(severity="info", instance=f"node-{g}-{i}:9100")
            alert.pop("fingerprint", None)
            doc["alerts"].append(alert)
        doc["groupKey"] = f'{{}}:{{alertname="InstanceDown", storm="{g}"}}'
        bodies.append(json.dumps(doc).encode())
    return bodies


def test_engines_race_on_the_same_alerts_and_nothing_doubles(make_config, clock):
    config = make_config(channels={"chat": {"type": "log"}, "pd": {"type": "pagerduty", "routing_key": "k" * 32}},
                         routes=[{"levels": {"L3": ["chat"], "L2": ["chat"], "L1": ["chat", "pd"]}}])
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    client = app.test_client()
    for body in storm_bodies():
        assert client.post("/webhook", data=body, content_type="application/json").status_code == 200

    engines = []
    for n in range(ENGINES):
        db = build_db(config)  # each engine its own pool, as separate processes would have
        channels = {"chat": RecordingChannel("chat"), "pd": RecordingChannel("pd")}
        engines.append((db, channels, Dispatcher(DirectWrites(db), config, channels, clock=clock, worker=f"engine-{n}", batch=50)))

    def run_all(fn):
        errors = []
        barrier = threading.Barrier(ENGINES)

        def run(engine):
            try:
                barrier.wait()
                fn(engine)
            except Exception as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(e,)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors

    def deliver(engine):
        while engine[2].run_once().handled:
            pass

    run_all(deliver)  # first notifications
    for minutes in (5, 15, 15, 15):  # → L2, → L1, repeat, repeat
        clock.advance(minutes * 60)
        run_all(lambda e: tick(DirectWrites(e[0]), config, clock.now()))
        run_all(deliver)

    db = app.extensions["alert_receiver"].db
    with db.connect() as conn:
        per_alert = collections.Counter(
            (r.kind, r.to_level) for r in conn.execute(sa.text(
                "SELECT kind, to_level FROM alert_events WHERE kind IN ('escalated', 'repeated')")))
        intents = conn.execute(sa.text(
            "SELECT channel, kind, level, count(*) AS n, count(DISTINCT alert_id) AS alerts "
            "FROM notification_items GROUP BY channel, kind, level, repeat_no ORDER BY 1, 2, 3")).all()
        unsent = conn.execute(sa.text("SELECT count(*) FROM notifications WHERE status <> 'sent'")).scalar_one()
    assert per_alert == {("escalated", "L2"): 1000, ("escalated", "L1"): 1000, ("repeated", "L1"): 2000}
    assert all(row.n == row.alerts == 1000 for row in intents), intents  # one intent per alert and step
    assert unsent == 0

    messages = collections.Counter()
    carried = collections.Counter()
    for _, channels, dispatcher in engines:
        dispatcher.close()
        for name, channel in channels.items():
            for message in channel.sent:
                messages[message.notification_id] += 1
                carried[(name, message.kind, message.level)] += len(message.alerts)
    assert set(messages.values()) == {1}  # no message went out twice, whichever engine sent it
    assert carried == {("chat", "firing", "L3"): 1000, ("chat", "escalated", "L2"): 1000,
                       ("chat", "escalated", "L1"): 1000, ("chat", "repeat", "L1"): 2000,
                       ("pd", "escalated", "L1"): 1000, ("pd", "repeat", "L1"): 2000}
    for db_, _, _ in engines:
        db_.dispose()
    db.dispose()
