"""SLA compliance (`sla` of the summary, the daily report, `alert-receiver stats`, the dashboard) against hand counts,
on SQLite and PostgreSQL: a history the engine made on an injected clock (ingest, escalations by the tick and by
hand, acks, resolutions, breaches keep each occurrence's flags), counted by hand in the test; and a generated
history (occurrences with their level stints, acks and breaches, flags and events) counted independently in plain
Python, per level, per service, with filters, route overrides, removed routes, `escalate: false` and occurrences
from before the flags."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from collections import defaultdict

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.cli import main
from receiver.domain import fingerprint as fp_of
from receiver.store.models import Alert, AlertEvent

from ..conftest import T0
from ..engine.harness import Ladder, body_with
from ..engine.test_sla_breaches import CHANNELS, DEFAULT_ROUTE, Engine

UTC = dt.timezone.utc
MIN = 60
LEVELS = ("L1", "L2", "L3")
OUTCOMES = ("met", "breached", "pending", "ended")


def z(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def block(target_seconds, met=0, breached=0, pending=0, ended=0):
    judged = met + breached
    return {"target_seconds": target_seconds, "met": met, "breached": breached, "pending": pending, "ended": ended,
            "percent": round(met / judged * 100, 2) if judged else None}


# --- a history made by the engine, counted by hand --------------------------------------------------------------


def test_an_engine_made_history_matches_a_hand_count(make_config, clock):
    config = make_config(channels=CHANNELS, routes=[DEFAULT_ROUTE])
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    eng = Engine(Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock))
    lad = eng.lad
    for name, service in (("a", "web"), ("b", "web"), ("d", "db")):
        lad.post(body_with("g_routing_critical" if name != "d" else "g_routing_warning_not_inhibited",
                           instance=name, service=service))
    lad.post(body_with("g_routing_warning_not_inhibited", instance="c", service="db"))
    lad.post(body_with("g_routing_info", instance="e", service="web"))  # L3 (no targets), then L2 at 5m
    lad.post(body_with("g_routing_info", instance="f", service="ops"))
    lad.post(body_with("g_routing_info", instance="g", service="batch"))
    ids = {r.labels["instance"]: r.id for r in lad.db.connect().execute(
        sa.select(Alert.__table__.c.id, Alert.__table__.c.labels))}

    def ack(name):
        assert lad.client.post(f"/api/v1/alerts/{ids[name]}/ack", json={"actor": "x"}).status_code == 200

    def resolve(name):
        assert lad.client.post(f"/api/v1/alerts/{ids[name]}/resolve", json={"actor": "x"}).status_code == 200

    def escalate_to_l1(name):
        resp = lad.client.post(f"/api/v1/alerts/{ids[name]}/escalate", json={"actor": "x", "level": "L1"})
        assert resp.status_code == 200, resp.get_json()

    # a: L1, acked at 3m (ack met), resolved at 20m (resolve met)
    # b: L1, ack breached at 5m, acked at 7m; resolve breached at 30m, resolved at 40m
    # c: L2, ack breached at 15m and escalated to L1 at 15m; acked at 17m (L1 ack met); still firing at 44m (L1
    #    resolve pending: 15m + 30m is 45m; L2 resolve ended: it left L2 unresolved)
    # d: L2, acked at 5m (L2 ack met), resolved at 10m (L2 resolve met)
    # e: L3 (no targets) → L2 at 5m; resolved at 8m unacknowledged (L2 ack ended, L2 resolve met)
    # f: L3, escalated by hand straight to L1 at 1m (never at L2); acked at 2m (L1 ack met); resolve breached at 31m
    # g: L3 → L2 at 5m; L2 ack breached and → L1 at 20m; L1 ack breached at 25m; resolved at 30m (L1 resolve met;
    #    L2 resolve ended): at L2 only in between, which its flags remember
    for minute, actions in ((0, []), (1, [lambda: escalate_to_l1("f")]), (2, [lambda: ack("f")]),
                            (3, [lambda: ack("a")]), (5, [lambda: ack("d")]), (7, [lambda: ack("b")]),
                            (8, [lambda: resolve("e")]), (10, [lambda: resolve("d")]), (15, []),
                            (17, [lambda: ack("c")]), (20, [lambda: resolve("a")]), (30, [lambda: resolve("g")]),
                            (40, [lambda: resolve("b")]), (44, [])):
        eng.at(minute * MIN)
        for action in actions:
            action()
    got = lad.client.get("/api/v1/stats/summary", query_string={"since": z(T0 - dt.timedelta(days=1)),
                                                                 "until": z(T0 + dt.timedelta(hours=1))}).get_json()
    sla = got["sla"]
    assert sla["L1"] == {"ack": block(300, met=3, breached=2), "resolve": block(1800, met=2, breached=2, pending=1)}
    assert sla["L2"] == {"ack": block(900, met=1, breached=2, ended=1), "resolve": block(7200, met=2, ended=2)}
    assert sla["L3"] == {"ack": block(None), "resolve": block(None)}
    assert sla["by_service"]["web"]["L1"] == {"ack": block(300, met=1, breached=1),
                                              "resolve": block(1800, met=1, breached=1)}
    assert sla["by_service"]["web"]["L2"] == {"ack": block(900, ended=1), "resolve": block(7200, met=1)}
    assert sla["by_service"]["db"]["L1"] == {"ack": block(300, met=1), "resolve": block(1800, pending=1)}
    assert sla["by_service"]["db"]["L2"] == {"ack": block(900, met=1, breached=1), "resolve": block(7200, met=1,
                                                                                                   ended=1)}
    assert sla["by_service"]["ops"] == {"L1": {"ack": block(300, met=1), "resolve": block(1800, breached=1)},
                                        "L2": {"ack": block(900), "resolve": block(7200)},
                                        "L3": {"ack": block(None), "resolve": block(None)}}
    assert sla["by_service"]["batch"]["L2"] == {"ack": block(900, breached=1), "resolve": block(7200, ended=1)}
    assert sla["by_service"]["batch"]["L1"] == {"ack": block(300, breached=1), "resolve": block(1800, met=1)}
    assert sla["L1"]["ack"]["percent"] == 60.0 and sla["L1"]["resolve"]["percent"] == 50.0
    eng.close()
    lad.db.dispose()


# --- a generated history, counted independently -------------------------------------------------------------------

START = dt.datetime(2026, 9, 1, tzinfo=UTC)
SINCE, UNTIL = START + dt.timedelta(hours=6), START + dt.timedelta(days=3)
DAY = dt.date(2026, 9, 2)
SERVICES = ("db", "web", "search")
# The default route keeps the default targets; the db route has an L3 ack target of its own and no L1 ack target.
ROUTES = [{"name": "db", "matchers": ['service="db"'], "sla": {"L3": {"ack": "1h"}, "L1": {"ack": None}}},
          {"levels": {"L1": ["log"], "L2": ["log"], "L3": ["log"]}}]
TARGETS = {"db": {"L1": {"resolve"}, "L2": {"ack", "resolve"}, "L3": {"ack"}},
           "default": {"L1": {"ack", "resolve"}, "L2": {"ack", "resolve"}, "L3": set()}}


@dataclasses.dataclass
class Stint:
    level: str
    entered: dt.datetime
    acked: bool  # acknowledged during this stint
    breached: set[str]


@dataclasses.dataclass
class Occ:
    id: int
    service: str
    route: str  # as stored: "db", "default", or a route a reload removed
    starts_at: dt.datetime
    stints: list[Stint]
    status: str
    acked_now: bool
    escalate: bool
    legacy: bool = False  # from before alerts.sla_flags: all zero

    @property
    def flags(self) -> int:
        if self.legacy:
            return 0
        bits = {"L1": 0, "L2": 4, "L3": 8}
        return sum((1 | (2 if s.acked else 0) | (4 if "ack" in s.breached else 0)
                    | (8 if "resolve" in s.breached else 0)) << bits[s.level] for s in self.stints)

    @property
    def level(self) -> str:
        return self.stints[-1].level

    @property
    def targets(self) -> dict[str, set[str]]:
        return TARGETS["db" if self.route == "db" else "default"]  # a removed route: the default's


def generate(seed: int = 17, n: int = 300) -> list[Occ]:
    rnd = random.Random(seed)
    occs = []
    for i in range(1, n + 1):
        service = rnd.choice(SERVICES)
        route = "db" if service == "db" else rnd.choice(("default", "default", "default", "gone"))
        starts = START + dt.timedelta(seconds=rnd.randint(0, 4 * 86400))
        level = rnd.choice(LEVELS)
        stints, t = [], starts
        while True:
            stints.append(Stint(level, t, rnd.random() < 0.4,
                                {x for x in ("ack", "resolve") if rnd.random() < 0.3}))
            t += dt.timedelta(minutes=rnd.randint(1, 90))
            if level == "L1" or rnd.random() < 0.5:
                break
            level = "L2" if level == "L3" else "L1"
        status = "resolved" if rnd.random() < 0.7 else "firing"
        acked_now = stints[-1].acked and rnd.random() < 0.7
        legacy = len(stints) == 1 and i % 7 == 0  # no breach was recorded before the flags either
        if legacy:
            stints[0].breached = set()
        occs.append(Occ(i, service, route, starts, stints, status, acked_now, rnd.random() > 0.05, legacy))
    return occs


def insert(db, occs: list[Occ]) -> None:
    alerts, events = [], []
    for o in occs:
        last = o.stints[-1]
        first_ack = next((s.entered + dt.timedelta(seconds=30) for s in o.stints if s.acked), None)
        end = last.entered + dt.timedelta(hours=3)
        alerts.append({
            "id": o.id, "fingerprint": fp_of({"i": str(o.id)}), "status": o.status, "starts_at": o.starts_at,
            "ends_at": end if o.status == "resolved" else None, "alertname": "A", "severity": "", "service": o.service,
            "instance": "", "labels": {}, "annotations": {}, "generator_url": "", "group_key": "", "group_id": "",
            "receiver": "", "source": "", "external_url": "", "level": o.level, "route": o.route,
            "escalate": o.escalate, "level_entered_at": last.entered, "next_action_at": None, "sla_flags": o.flags,
            "escalation_count": len(o.stints) - 1, "repeat_count": 0,
            "first_acked_at": first_ack, "acked_at": first_ack if o.acked_now else None,
            "acked_by": "x" if o.acked_now else None, "ack_expires_at": None,
            "resolved_at": end if o.status == "resolved" else None, "resolved_by": None,
            "received_at": o.starts_at, "updated_at": o.starts_at})
        for k, s in enumerate(o.stints):
            kind = "received" if k == 0 else "escalated"
            events.append({"alert_id": o.id, "kind": kind, "at": s.entered, "to_level": s.level,
                           "from_level": None if k == 0 else o.stints[k - 1].level, "details": None})
            if s.acked:  # twice in some stints: an ack undone and given again counts once
                for j in range(1 + o.id % 2):
                    events.append({"alert_id": o.id, "kind": "acked", "at": s.entered + dt.timedelta(seconds=30 + j),
                                   "to_level": None, "from_level": None, "details": None})
            for target in sorted(s.breached):
                events.append({"alert_id": o.id, "kind": "sla_breached", "at": s.entered + dt.timedelta(minutes=1),
                               "to_level": s.level, "from_level": s.level,
                               "details": {"target": target, "level": s.level, "target_seconds": 60}})
        if o.status == "resolved":
            events.append({"alert_id": o.id, "kind": "resolved", "at": end, "to_level": None, "from_level": None,
                           "details": None})
    with db.begin() as conn:
        conn.execute(sa.insert(Alert.__table__), alerts)
        conn.execute(sa.insert(AlertEvent.__table__), events)


def outcome(o: Occ, s: Stint, target: str) -> str:
    here = o.level == s.level
    if target in s.breached:
        return "breached"
    if target == "ack":
        if s.acked:
            return "met"
        return "pending" if here and o.status == "firing" and not o.acked_now else "ended"
    if here and o.status == "resolved":
        return "met"
    return "pending" if here and o.status == "firing" else "ended"


def hand_count(occs: list[Occ], since: dt.datetime, until: dt.datetime, service: str | None = None) -> dict:
    counts = defaultdict(lambda: {x: {t: dict.fromkeys(OUTCOMES, 0) for t in ("ack", "resolve")} for x in LEVELS})
    for o in occs:
        if not (since <= o.starts_at < until) or not o.escalate or (service and o.service != service):
            continue
        for s in o.stints:
            for target in o.targets[s.level]:
                result = outcome(o, s, target)
                counts["all"][s.level][target][result] += 1
                counts[o.service][s.level][target][result] += 1
    defaults = {"L1": (300, 1800), "L2": (900, 7200), "L3": (None, None)}

    def blocks(levels):
        return {x: {t: block(defaults[x][k], **levels[x][t]) for k, t in enumerate(("ack", "resolve"))}
                for x in LEVELS}

    return {**blocks(counts["all"]), "by_service": {name: blocks(counts[name])
                                                    for name in sorted(counts) if name != "all"}}


@pytest.fixture
def generated(make_config, clock):
    config = make_config(routes=ROUTES)
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    occs = generate()
    insert(app.extensions["alert_receiver"].db, occs)
    yield app.test_client(), occs
    app.extensions["alert_receiver"].db.dispose()


def test_the_summary_equals_an_independent_count_per_level_and_service(generated):
    client, occs = generated
    got = client.get("/api/v1/stats/summary", query_string={"since": z(SINCE), "until": z(UNTIL)}).get_json()
    want = hand_count(occs, SINCE, UNTIL)
    assert got["sla"] == want
    # The cases are really in the data: every outcome at L1 and L2, route overrides, removed and silent routes.
    for x in ("L1", "L2"):
        for t in ("ack", "resolve"):
            possible = [k for k in OUTCOMES if (x, t, k) != ("L1", "resolve", "ended")]  # L1 is never left
            assert all(want[x][t][k] for k in possible), (x, t, want[x][t])
    assert want["by_service"]["db"]["L3"]["ack"]["met"] and want["L3"]["ack"]["target_seconds"] is None
    assert want["by_service"]["db"]["L1"]["ack"] == block(300)  # the db route has no L1 ack target
    assert any(o.route == "gone" for o in occs) and any(not o.escalate for o in occs)
    assert any(o.legacy and o.stints[0].acked for o in occs if SINCE <= o.starts_at < UNTIL)


def test_filters_hold(generated):
    client, occs = generated
    got = client.get("/api/v1/stats/summary", query_string={
        "since": z(SINCE), "until": z(UNTIL), "service": "web"}).get_json()
    assert got["sla"] == hand_count(occs, SINCE, UNTIL, service="web")
    empty = client.get("/api/v1/stats/summary", query_string={"since": "2020-01-01T00:00:00Z",
                                                               "until": "2020-01-02T00:00:00Z"}).get_json()["sla"]
    assert empty["by_service"] == {} and empty["L1"]["ack"] == block(300)


def test_the_daily_report_and_the_cli_show_the_same_numbers(generated, tmp_path):
    client, occs = generated
    day_since = dt.datetime.combine(DAY, dt.time(0), tzinfo=UTC)
    want = hand_count(occs, day_since, day_since + dt.timedelta(days=1))
    report = client.get("/api/v1/reports/daily", query_string={"date": DAY.isoformat()}).get_json()
    assert report["summary"]["sla"] == want
    config_path = str(sorted(tmp_path.glob("receiver-*.yml"))[0])
    runner = CliRunner()
    result = runner.invoke(main, ["stats", "report", "-c", config_path, "--date", DAY.isoformat()])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["summary"]["sla"] == want
    result = runner.invoke(main, ["stats", "report", "-c", config_path, "--date", DAY.isoformat(),
                                  "--format", "csv"])
    assert result.exit_code == 0, result.output
    breached = {line.split(",")[0]: int(line.split(",")[-1]) for line in result.output.strip().splitlines()[1:]}
    assert breached == {name: sum(b["breached"] for lv in want["by_service"].get(name, {}).values()
                                  for b in lv.values()) for name in breached}
    assert sum(breached.values()) == sum(want[x][t]["breached"] for x in LEVELS for t in ("ack", "resolve")) > 0
    period = ["--since", z(SINCE), "--until", z(UNTIL)]
    result = runner.invoke(main, ["stats", "summary", "-c", config_path, *period, "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = dict(line.split(",", 1) for line in result.output.strip().splitlines()[1:])
    summary = hand_count(occs, SINCE, UNTIL)
    b = summary["L2"]["ack"]
    assert rows["sla.L2.ack"].strip('"') == (f"{b['percent']:g}% ({b['met']} met, {b['breached']} breached, "
                                            f"{b['pending']} pending, {b['ended']} ended)")
    b = summary["by_service"]["db"]["L3"]["ack"]
    assert rows["sla[db].L3.ack"].strip('"').startswith(f"{b['percent']:g}% ({b['met']} met, ")
    assert "sla.L3.resolve" not in rows  # no route has the target, nothing is counted


# --- the same numbers from the statistics aggregates -------------------------------------------------------------

WATERMARK = START + dt.timedelta(days=2, hours=1, minutes=13)  # inside the periods, not on an hour


def at_edges(occs: list[Occ], edges: list[dt.datetime]) -> list[Occ]:
    """Copies of generated occurrences starting exactly at, and just around, each edge (the partial hours a plan
    reads raw, the first and last instant of a period)."""
    out, next_id = [], max(o.id for o in occs) + 1
    for k, edge in enumerate(edges):
        for shift in (dt.timedelta(0), dt.timedelta(microseconds=-1), dt.timedelta(seconds=1)):
            o = occs[(7 * k + shift.microseconds) % len(occs)]
            out.append(dataclasses.replace(o, id=next_id, starts_at=edge + shift))
            next_id += 1
    return out


def test_compliance_from_the_aggregates_equals_the_raw_one(make_config, clock):
    from receiver.statistics import read_aggregates, read_sla
    from receiver.store.models import AlertStatsSla
    from receiver.store.queries import AlertFilter

    from .test_stats_api import refresh_to

    config = make_config(routes=ROUTES)
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    db = app.extensions["alert_receiver"].db
    ragged = (SINCE + dt.timedelta(minutes=17, seconds=13), UNTIL - dt.timedelta(minutes=7))
    periods = [(SINCE, UNTIL), ragged, (START + dt.timedelta(days=1, hours=10, minutes=30),
                                        START + dt.timedelta(days=1, hours=15, seconds=1))]
    occs = generate()
    occs += at_edges(occs, sorted({t for p in periods for t in p} | {WATERMARK.replace(minute=0)}))
    insert(db, occs)
    filters = [{}, {"services": ["web"]}, {"services": ["db", "search"], "levels": ["L2", "L3"]},
               {"status": "resolved"}, {"severities": [""]}, {"acked": True}]

    def compliance_all() -> dict:
        with db.connect() as conn:
            return {(p, i): read_sla.compliance(conn, AlertFilter(since=p[0], until=p[1], **f), config)
                    for p in periods for i, f in enumerate(filters)}

    raw = compliance_all()  # no aggregates yet: raw rows only
    for p in periods:
        assert raw[(p, 0)] == hand_count(occs, *p)
        assert raw[(p, 1)] == hand_count(occs, *p, service="web")
    refresh_to(db, config, WATERMARK)
    assert compliance_all() == raw
    # The aggregates really answered part of each period: settled occurrences in day and hour rows, and the raw
    # rest (edges, firing, resolved after the watermark) really exists.
    t = AlertStatsSla.__table__.c
    with db.connect() as conn:
        spans = dict(conn.execute(sa.select(t.span, sa.func.sum(t.occurrences)).group_by(t.span)).all())
        assert spans.get(1) and spans.get(24)
        for since, until in periods:
            plan = read_aggregates.plan(conn, since, until)
            assert plan is not None and plan.hour_ranges()
            held = conn.execute(sa.select(sa.func.sum(t.occurrences)).where(
                *read_aggregates.sla_where(plan, (), (), ()))).scalar()
            assert 0 < held < sum(since <= o.starts_at < until and o.escalate for o in occs)
    assert any(o.status == "firing" or o.stints[-1].entered + dt.timedelta(hours=3) >= WATERMARK
               for o in occs if SINCE <= o.starts_at < WATERMARK)
    # Later refreshes (occurrences settling) keep it equal.
    refresh_to(db, config, START + dt.timedelta(days=4))
    assert compliance_all() == raw
    db.dispose()
