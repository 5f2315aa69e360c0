"""Correlations on both databases: same group at the same time, same instance or service within the window (scores
recomputed here from the documented formula), manual links in both directions, and POST /api/v1/correlations."""

from __future__ import annotations

import datetime as dt

import pytest

from ..support.fixtures import TOKEN, raw
from .dataset import NOW, Dataset

M = dt.timedelta(minutes=1)


def related(client, alert_id, **params):
    r = client.get(f"/api/v1/alerts/{alert_id}/related", query_string=params)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def expected_score(kind: str, seconds: float, window: float) -> float:
    base = {"instance": 0.9, "service": 0.7}[kind]
    return round(base * (1 - seconds / (2 * window)), 4)


@pytest.fixture
def scene(db):
    """An anchor and its neighbours at known distances, plus things that must not be related."""
    ds = Dataset()
    t = NOW - dt.timedelta(hours=2)
    g = {"group_key": "{}:{alertname=\"X\"}", "group_id": "00000000000000aa"}
    anchor = ds.alert(service="payments", instance="db-1:5432", starts_at=t, ends_at=t + 20 * M, **g)
    s = {
        "group_overlap": ds.alert(service="other", starts_at=t + 15 * M, ends_at=t + 40 * M, **g),
        "group_later_day": ds.alert(service="other", starts_at=t - dt.timedelta(days=2),
                                    ends_at=t - dt.timedelta(days=2) + 5 * M, **g),
        "service_0": ds.alert(service="payments", starts_at=t),
        "service_10": ds.alert(service="payments", starts_at=t - 10 * M, ends_at=t),
        "service_29": ds.alert(service="payments", starts_at=t + 29 * M),
        "service_31": ds.alert(service="payments", starts_at=t + 31 * M),
        "instance_5": ds.alert(service="db", instance="db-1:5432", starts_at=t + 5 * M),
        "both_20": ds.alert(service="payments", instance="db-1:5432", starts_at=t - 20 * M, ends_at=t),
        "unrelated": ds.alert(service="search", instance="web-1", starts_at=t),
        "blank_service": ds.alert(service="", starts_at=t),
    }
    blank_anchor = ds.alert(service="", instance="", starts_at=t, group_key="", group_id="")
    manual_far = ds.alert(service="search", starts_at=t - dt.timedelta(days=30),
                          ends_at=t - dt.timedelta(days=30) + M)
    ds.link(manual_far, anchor, type="cause", score=0.35, actor="ana", comment="root cause")
    ds.insert(db)
    return ds, anchor, s, blank_anchor, manual_far


def test_related_scores_every_source_by_the_documented_formula(client, scene):
    ds, anchor, s, _, manual_far = scene
    body = related(client, anchor.id)
    assert body["window"] == "30m" and body["count"] == len(body["related"])
    got = {e["alert"]["id"]: e for e in body["related"]}
    w = 1800.0
    want = {
        s["group_overlap"].id: ("group", 1.0),
        s["service_0"].id: ("service", expected_score("service", 0, w)),
        s["service_10"].id: ("service", expected_score("service", 600, w)),
        s["service_29"].id: ("service", expected_score("service", 29 * 60, w)),
        s["instance_5"].id: ("instance", expected_score("instance", 300, w)),
        s["both_20"].id: ("instance", expected_score("instance", 1200, w)),
        manual_far.id: ("cause", 0.35),
    }
    assert {k: (v["type"], v["score"]) for k, v in got.items()} == want
    for e in body["related"]:
        assert 0.0 <= e["score"] <= 1.0 and e["reason"]
    both = got[s["both_20"].id]
    assert [(r["type"], r["score"]) for r in both["reasons"]] == [
        ("instance", expected_score("instance", 1200, w)), ("service", expected_score("service", 1200, w))]
    manual = got[manual_far.id]["reasons"][0]
    assert manual | {"created_at": None} == {"type": "cause", "score": 0.35, "reason": "linked by hand", "manual": True,
                                            "link_id": 1, "direction": "incoming", "actor": "ana",
                                            "comment": "root cause", "created_at": None}
    scores = [(e["score"]) for e in body["related"]]
    assert scores == sorted(scores, reverse=True)
    assert got[s["group_overlap"].id]["alert"] | {"starts_at": None} == {
        "id": s["group_overlap"].id, "fingerprint": s["group_overlap"].fingerprint, "alertname": "HighLatency",
        "severity": "warning", "service": "other", "instance": "", "status": "resolved", "level": "L2",
        "starts_at": None, "ends_at": "2026-11-23T10:40:00Z", "group_id": "00000000000000aa"}


def test_window_and_limit(client, scene):
    _, anchor, s, _, manual_far = scene
    wide = {e["alert"]["id"]: e["score"] for e in related(client, anchor.id, window="1h")["related"]}
    assert s["service_31"].id in wide and wide[s["service_31"].id] == expected_score("service", 31 * 60, 3600)
    assert s["group_later_day"].id not in wide and s["unrelated"].id not in wide
    narrow = {e["alert"]["id"] for e in related(client, anchor.id, window="5m")["related"]}
    assert narrow == {s["group_overlap"].id, s["service_0"].id, s["instance_5"].id, manual_far.id}
    top = related(client, anchor.id, limit=3)["related"]
    assert [e["alert"]["id"] for e in top] == [s["group_overlap"].id, s["instance_5"].id, s["service_0"].id]  # 1, .825, .7


def test_an_alert_without_group_service_or_instance_has_only_its_links(client, scene):
    _, _, _, blank_anchor, _ = scene
    assert related(client, blank_anchor.id)["related"] == []


def test_same_group_through_the_real_ingest_path(client):
    assert client.post("/webhook", data=raw("b_group_5_firing"), content_type="application/json").status_code == 200
    assert client.post("/webhook", data=raw("g_routing_info"), content_type="application/json").status_code == 200
    alerts = client.get("/api/v1/alerts", query_string={"limit": 100, "order": "asc"}).get_json()["alerts"]
    billing = [a for a in alerts if a["service"] == "billing"]
    assert len(billing) == 5 and len({a["group_id"] for a in billing}) == 1
    body = related(client, billing[0]["id"])
    group = [e for e in body["related"] if e["type"] == "group"]
    assert sorted(e["alert"]["id"] for e in group) == sorted(a["id"] for a in billing[1:])
    assert all(e["score"] == 1.0 and [r["type"] for r in e["reasons"]] == ["group", "service"] for e in group)
    others = {a["id"] for a in alerts} - {a["id"] for a in billing}
    assert not others & {e["alert"]["id"] for e in body["related"]}


def test_record_a_link_and_read_it_from_both_ends(client, scene):
    _, anchor, s, _, _ = scene
    other = s["unrelated"]
    r = client.post("/api/v1/correlations", json={"alert_id": anchor.id, "related_alert_id": other.id,
                                                  "comment": "same deploy", "score": 0.8})
    assert r.status_code == 201, r.get_json()
    created = r.get_json()
    assert created == {"id": created["id"], "alert_id": anchor.id, "related_alert_id": other.id, "type": "manual",
                       "score": 0.8, "actor": "anonymous", "comment": "same deploy",
                       "created_at": "2026-11-23T09:00:00Z"}
    for a, b, direction in ((anchor, other, "outgoing"), (other, anchor, "incoming")):
        entry = next(e for e in related(client, a.id)["related"] if e["alert"]["id"] == b.id)
        assert (entry["type"], entry["score"]) == ("manual", 0.8)
        assert entry["reasons"][0]["direction"] == direction and entry["reasons"][0]["comment"] == "same deploy"
    typed = client.post("/api/v1/correlations", json={"alert_id": other.id, "related_alert_id": anchor.id,
                                                      "type": "cause", "actor": "ana"})
    assert typed.status_code == 201 and typed.get_json()["score"] == 1.0 and typed.get_json()["actor"] == "ana"


@pytest.mark.parametrize("swap", [False, True], ids=["same-direction", "reverse-direction"])
def test_a_duplicate_link_is_409(client, scene, swap):
    _, anchor, s, _, _ = scene
    a, b = anchor.id, s["unrelated"].id
    assert client.post("/api/v1/correlations", json={"alert_id": a, "related_alert_id": b}).status_code == 201
    if swap:
        a, b = b, a
    r = client.post("/api/v1/correlations", json={"alert_id": a, "related_alert_id": b, "type": "manual"})
    assert r.status_code == 409 and r.get_json()["error"] == "duplicate"


@pytest.mark.parametrize("body, status, error", [
    ({"alert_id": 1, "related_alert_id": 1}, 400, "bad_field"),
    ({"alert_id": 1}, 400, "missing_field"),
    ({"alert_id": "1", "related_alert_id": 2}, 400, "bad_field"),
    ({"alert_id": True, "related_alert_id": 2}, 400, "bad_field"),
    ({"alert_id": 1, "related_alert_id": 2, "score": 1.5}, 400, "bad_field"),
    ({"alert_id": 1, "related_alert_id": 2, "score": -0.1}, 400, "bad_field"),
    ({"alert_id": 1, "related_alert_id": 2, "score": "high"}, 400, "bad_field"),
    ({"alert_id": 1, "related_alert_id": 2, "type": "Two Words"}, 400, "bad_field"),
    ({"alert_id": 1, "related_alert_id": 2, "type": ""}, 400, "bad_field"),
    ({"alert_id": 1, "related_alert_id": 2, "comment": 7}, 400, "bad_field"),
    ({"alert_id": 1, "related_alert_id": 2, "colour": "red"}, 400, "unknown_field"),
    ({"alert_id": 1, "related_alert_id": 99999}, 404, "not_found"),
    ({"alert_id": 99999, "related_alert_id": 1}, 404, "not_found"),
])
def test_bad_links_are_refused(client, scene, body, status, error):
    r = client.post("/api/v1/correlations", json=body)
    assert r.status_code == status and r.get_json()["error"] == error, r.get_json()


def test_malformed_bodies_are_refused(client, scene):
    assert client.post("/api/v1/correlations", data="{", content_type="application/json").status_code == 400
    assert client.post("/api/v1/correlations", data="[]", content_type="application/json").status_code == 400
    assert client.post("/api/v1/correlations", data="a=1", content_type="text/plain").status_code == 415


@pytest.mark.parametrize("query, status", [("", 200), ("window=2h", 200), ("window=0s", 400), ("window=25h", 400),
                                           ("window=30", 400), ("limit=0", 400), ("limit=501", 400),
                                           ("colour=red", 400)])
def test_related_parameters(client, scene, query, status):
    _, anchor, _, _, _ = scene
    assert client.get(f"/api/v1/alerts/{anchor.id}/related?{query}").status_code == status


def test_unknown_alert_is_404(client, scene):
    assert client.get("/api/v1/alerts/99999/related").status_code == 404


@pytest.fixture
def auth_client(auth_config, clock):
    from prometheus_client import CollectorRegistry

    from receiver.app import create_app

    app = create_app(auth_config, clock=clock, registry=CollectorRegistry())
    yield app.test_client()
    app.extensions["alert_receiver"].db.dispose()


@pytest.mark.parametrize("method, path, token, status", [
    ("get", "/api/v1/alerts/1/related", None, 401),
    ("get", "/api/v1/alerts/1/related", TOKEN, 403),
    ("get", "/api/v1/alerts/1/related", "read-token-0123", 404),
    ("post", "/api/v1/correlations", None, 401),
    ("post", "/api/v1/correlations", "read-token-0123", 403),
    ("post", "/api/v1/correlations", "admin-token-4567", 404),
])
def test_roles(auth_client, method, path, token, status):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs = {"json": {"alert_id": 1, "related_alert_id": 2}} if method == "post" else {}
    assert getattr(auth_client, method)(path, headers=headers, **kwargs).status_code == status
