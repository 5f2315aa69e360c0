"""SLA breaches on an injected clock (SQLite and PostgreSQL): the `sla_breached` event lands at exactly
level_entered_at + target however late the tick, once per target and level stint; an ack in time prevents the ack
breach; a level change starts the next level's targets; the metric and the optional notice to `sla.notify` fire
once per breach; two engines record one breach; route overrides, L3 without targets, mutes and `escalate: false`."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from receiver.app import build_db, create_app
from receiver.engine.runner import EngineRunner
from receiver.engine.sla_breaches import check_breaches
from receiver.metrics import Metrics
from receiver.store.models import Alert, AlertEvent
from receiver.store.write_port import DirectWrites

from ..conftest import T0
from .harness import Heard, Ladder, body_with

CHANNELS = {"chat": {"type": "log"}, "pager": {"type": "log"}, "sla-chat": {"type": "log"},
            "pd": {"type": "pagerduty", "routing_key": "k" * 32}}
DEFAULT_ROUTE = {"levels": {"L3": ["chat"], "L2": ["chat"], "L1": ["pager"]}}
MIN = 60
ALERT = ("HighErrorRate",)


class Engine:
    """The harness's receiver plus a real EngineRunner's tick (breaches, then the escalation tick) and metrics."""

    def __init__(self, lad: Ladder):
        self.lad = lad
        self.registry = CollectorRegistry()
        self.runner = EngineRunner(lad.config, lad.writes, metrics=Metrics(self.registry), clock=lad.clock)

    def at(self, seconds: float) -> list[Heard]:
        """Set the clock to T0 + seconds, run one engine tick, deliver; what the channels heard."""
        self.lad.clock.set(T0 + dt.timedelta(seconds=seconds))
        self.runner.tick_once()
        self.lad.deliver()
        return self.lad.heard()

    def breaches(self) -> list[tuple[str, str, dt.datetime]]:
        """(level, target, at) of every sla_breached event, in time order."""
        e = AlertEvent.__table__.c
        with self.lad.db.connect() as conn:
            rows = conn.execute(sa.select(e.details, e.at, e.from_level, e.to_level)
                                .where(e.kind == "sla_breached").order_by(e.at, e.id)).all()
        for r in rows:  # the event is at level_entered_at + target: it names both
            assert r.details["level"] == r.from_level == r.to_level
            assert set(r.details) == {"target", "level", "target_seconds"}
        return [(r.details["level"], r.details["target"], r.at) for r in rows]

    def metric(self, level: str, target: str) -> float:
        return self.registry.get_sample_value("alert_receiver_sla_breaches_total", {"level": level, "target": target})

    def close(self):
        self.runner.dispatcher.close()
        self.lad.close()


@pytest.fixture
def engine(make_config, clock):
    made = []

    def make(routes=(DEFAULT_ROUTE,), **sections) -> Engine:
        config = make_config(channels=CHANNELS, routes=list(routes), **sections)
        app = create_app(config, clock=clock, registry=CollectorRegistry())
        made.append(Engine(Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)))
        return made[-1]

    yield make
    for eng in made:
        eng.close()
        eng.lad.db.dispose()


def at(minutes: float = 0, seconds: float = 0) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes, seconds=seconds)


def alert_row(lad: Ladder):
    with lad.db.connect() as conn:
        (row,) = conn.execute(sa.select(Alert.__table__)).all()
    return row


def test_the_ack_breach_lands_at_exactly_the_target_and_the_resolve_breach_at_30m(engine):
    eng = engine()
    eng.lad.post("g_routing_critical")  # L1 at T0
    assert alert_row(eng.lad).level_entered_at == T0
    eng.at(5 * MIN - 1)
    assert eng.breaches() == [] and eng.metric("L1", "ack") == 0
    eng.at(5 * MIN)  # the tick at exactly the target
    assert eng.breaches() == [("L1", "ack", at(5))]
    assert alert_row(eng.lad).sla_ack_breached_at == at(5)
    assert eng.metric("L1", "ack") == 1
    eng.at(30 * MIN - 1)
    assert eng.breaches() == [("L1", "ack", at(5))]
    eng.at(30 * MIN)
    assert eng.breaches() == [("L1", "ack", at(5)), ("L1", "resolve", at(30))]
    for minutes in (31, 45, 90, 240):  # repeats at L1 go on; the breaches are not recorded again
        eng.at(minutes * MIN)
    assert len(eng.breaches()) == 2
    assert (eng.metric("L1", "ack"), eng.metric("L1", "resolve"), eng.metric("L2", "ack")) == (1, 1, 0)
    timeline = eng.lad.client.get(f"/api/v1/alerts/{alert_row(eng.lad).id}").get_json()["timeline"]
    breached = [t for t in timeline if t["kind"] == "sla_breached"]
    assert [(t["at"], t["details"]["target"]) for t in breached] == [
        ("2026-11-23T09:05:00Z", "ack"), ("2026-11-23T09:30:00Z", "resolve")]


def test_a_late_tick_still_stamps_the_moment_of_the_target(engine):
    eng = engine()
    eng.lad.post("g_routing_critical")
    eng.at(5 * MIN + 40)
    assert eng.breaches() == [("L1", "ack", at(5))]
    assert alert_row(eng.lad).sla_ack_breached_at == at(5)
    eng.at(3 * 60 * MIN)  # three hours late: the resolve breach is still at 30 minutes
    assert eng.breaches() == [("L1", "ack", at(5)), ("L1", "resolve", at(30))]


def test_an_ack_in_time_prevents_the_ack_breach_but_not_the_resolve_breach(engine):
    eng = engine()
    eng.lad.post("g_routing_critical")
    eng.at(4 * MIN)
    resp = eng.lad.client.post(f"/api/v1/alerts/{alert_row(eng.lad).id}/ack", json={"actor": "alice"})
    assert resp.status_code == 200
    eng.at(10 * MIN)
    assert eng.breaches() == []
    eng.at(30 * MIN)
    assert eng.breaches() == [("L1", "resolve", at(30))]
    assert eng.metric("L1", "ack") == 0


def test_a_resolution_in_time_prevents_both(engine):
    eng = engine()
    eng.lad.post("g_routing_critical")
    eng.at(2 * MIN)
    eng.lad.post("g_routing_critical_resolved")
    eng.at(60 * MIN)
    assert eng.breaches() == []


def test_escalation_starts_the_next_levels_targets(engine):
    eng = engine()
    eng.lad.post("g_routing_warning_not_inhibited")  # L2 at T0; escalates to L1 after 15 minutes
    eng.at(15 * MIN - 1)
    assert eng.breaches() == []
    heard = eng.at(15 * MIN)  # the L2 ack target and the escalation are due at once: breach first, then L1
    assert Heard("pager", "escalated", "L1", ALERT) in heard
    assert eng.breaches() == [("L2", "ack", at(15))]
    row = alert_row(eng.lad)
    assert (row.level, row.level_entered_at, row.sla_ack_breached_at) == ("L1", at(15), None)  # cleared
    eng.at(20 * MIN - 1)
    assert eng.breaches() == [("L2", "ack", at(15))]
    eng.at(20 * MIN)  # L1's 5 minutes, from the escalation
    eng.at(3 * 60 * MIN)
    assert eng.breaches() == [("L2", "ack", at(15)), ("L1", "ack", at(20)), ("L1", "resolve", at(45))]
    assert (eng.metric("L2", "ack"), eng.metric("L2", "resolve"), eng.metric("L1", "ack")) == (1, 0, 1)


def test_an_expired_ack_starts_the_level_anew(engine):
    eng = engine(sla={"L1": {"resolve": None}})
    eng.lad.post("g_routing_critical")
    eng.at(6 * MIN)
    assert eng.breaches() == [("L1", "ack", at(5))]
    resp = eng.lad.client.post(f"/api/v1/alerts/{alert_row(eng.lad).id}/ack", json={"actor": "a", "ttl": "10m"})
    assert resp.status_code == 200
    eng.at(16 * MIN)  # the ack expires: L1 starts again at 16m, its stamp cleared
    assert alert_row(eng.lad).level_entered_at == at(16) and alert_row(eng.lad).sla_ack_breached_at is None
    eng.at(21 * MIN)
    assert eng.breaches() == [("L1", "ack", at(5)), ("L1", "ack", at(21))]


def test_one_notice_per_breach_to_the_sla_notify_channels(engine):
    eng = engine(sla={"notify": ["sla-chat", "pd"]})
    eng.lad.post("g_routing_critical")
    assert {h.channel for h in eng.at(0)} == {"pager"}
    assert eng.at(5 * MIN) == [Heard("pd", "sla_ack_breached", "L1", ALERT),
                               Heard("sla-chat", "sla_ack_breached", "L1", ALERT)]
    assert eng.at(6 * MIN) == []
    heard = eng.at(30 * MIN)
    assert [h for h in heard if h.kind.startswith("sla_")] == [Heard("pd", "sla_resolve_breached", "L1", ALERT),
                                                               Heard("sla-chat", "sla_resolve_breached", "L1", ALERT)]
    for minutes in (31, 60, 120):
        assert [h for h in eng.at(minutes * MIN) if h.kind.startswith("sla_")] == []
    # The told channels hear the resolution too.
    eng.lad.post("g_routing_critical_resolved")
    assert {(h.channel, h.kind) for h in eng.at(121 * MIN)} == {
        ("pager", "resolved"), ("sla-chat", "resolved"), ("pd", "resolved")}


def test_no_notice_without_sla_notify(engine):
    eng = engine()
    eng.lad.post("g_routing_critical")
    eng.at(0)
    assert eng.at(5 * MIN) == []
    assert eng.at(30 * MIN) == [Heard("pager", "repeat", "L1", ALERT)]  # the L1 repeat alone
    assert len(eng.breaches()) == 2


def test_two_engines_at_once_record_one_breach_each(engine):
    eng = engine(sla={"notify": ["sla-chat"]})
    eng.lad.post("b_group_5_firing")  # five L1 alerts of one group
    eng.lad.clock.set(at(5))
    dbs = [build_db(eng.lad.config) for _ in range(3)]
    results, errors = [], []
    barrier = threading.Barrier(len(dbs))

    def run(db):
        try:
            barrier.wait()
            results.append(check_breaches(DirectWrites(db), eng.lad.config, eng.lad.clock.now()))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(db,)) for db in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sum(r.breaches[("L1", "ack")] for r in results) == 5
    assert check_breaches(eng.lad.writes, eng.lad.config, eng.lad.clock.now()).total == 0  # and a second tick
    assert sorted(eng.breaches()) == [("L1", "ack", at(5))] * 5
    eng.lad.deliver()
    heard = [a for h in eng.lad.heard() if h.kind.startswith("sla_") for a in h.alerts]
    assert len(heard) == 5  # one notice per breach (in one message, unless two engines split the group)
    for db in dbs:
        db.dispose()


def test_route_overrides_apply(engine):
    db_route = {"matchers": ['team="db"'], "sla": {"L1": {"ack": "2m"}}}
    quiet = {"matchers": ['team="quiet"'], "sla": {"L1": None}}
    eng = engine(routes=(db_route, quiet, DEFAULT_ROUTE))
    eng.lad.post(body_with("g_routing_critical", team="db"))
    eng.lad.post(body_with("g_routing_critical", team="quiet"))
    eng.lad.post("g_routing_critical")
    eng.at(3 * 60 * MIN)
    with eng.lad.db.connect() as conn:
        rows = conn.execute(sa.select(Alert.__table__.c.id, Alert.__table__.c.labels)).all()
    team = {r.id: r.labels.get("team", "-") for r in rows}
    e = AlertEvent.__table__.c
    with eng.lad.db.connect() as conn:
        events = conn.execute(sa.select(e.alert_id, e.details, e.at).where(e.kind == "sla_breached")).all()
    got = sorted((team[r.alert_id], r.details["target"], r.at, r.details["target_seconds"]) for r in events)
    assert got == [("-", "ack", at(5), 300), ("-", "resolve", at(30), 1800),
                   ("db", "ack", at(2), 120), ("db", "resolve", at(30), 1800)]


def test_l3_has_no_target_unless_configured(engine):
    stay = {"levels": DEFAULT_ROUTE["levels"], "escalation": {"L3": {"escalate_after": None}}}
    eng = engine(routes=(stay,))
    eng.lad.post("g_routing_info")
    eng.at(24 * 60 * MIN)
    assert eng.breaches() == [] and alert_row(eng.lad).level == "L3"
    eng2 = engine(routes=(stay,), sla={"L3": {"resolve": "1h"}})
    assert eng2.lad.config.sla.L3.resolve == dt.timedelta(hours=1)
    eng2.runner.tick_once()  # the same alert, held to the new target
    assert eng2.breaches() == [("L3", "resolve", at(60))]


def test_muted_never_escalating_and_removed_routes(engine):
    watchdog = {"matchers": ['alertname="Watchdog"'], "escalate": False}
    eng = engine(routes=(watchdog, DEFAULT_ROUTE))
    eng.lad.post(body_with("g_routing_critical", instance="muted"))
    eng.lad.post(body_with("g_routing_critical", instance="gone"))
    eng.lad.post(body_with("g_routing_critical", instance="off"))
    a = Alert.__table__.c
    with eng.lad.db.begin() as conn:
        ids = {r.labels["instance"]: r.id for r in conn.execute(sa.select(a.id, a.labels))}
        conn.execute(sa.update(Alert.__table__).where(a.id == ids["muted"]).values(muted_until=at(24 * 60)))
        conn.execute(sa.update(Alert.__table__).where(a.id == ids["gone"]).values(route="a route a reload removed"))
        conn.execute(sa.update(Alert.__table__).where(a.id == ids["off"]).values(escalate=False))
    eng.at(10 * MIN)
    e = AlertEvent.__table__.c
    with eng.lad.db.connect() as conn:
        breached = {r.alert_id for r in conn.execute(sa.select(e.alert_id).where(e.kind == "sla_breached"))}
    assert breached == {ids["gone"]}  # held to the default route's targets
