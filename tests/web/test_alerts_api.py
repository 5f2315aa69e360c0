"""GET /api/v1/alerts filters and pagination, GET /api/v1/alerts/<id>, on both databases."""

from __future__ import annotations

import json

import pytest

from ..support.fixtures import raw


def post(client, body: bytes, path="/webhook"):
    r = client.post(path, data=body, content_type="application/json")
    assert r.status_code == 200, r.get_json()


@pytest.fixture
def seeded(client):
    for name in ("b_group_5_firing", "c_group_resolved", "d_mixed_firing_resolved", "g_routing_info",
                 "g_routing_critical", "a_single_firing", "f_unicode_special_chars"):
        post(client, raw(name))
    return client


def ids(client, **params):
    r = client.get("/api/v1/alerts", query_string=params)
    assert r.status_code == 200, r.get_json()
    return r.get_json()["alerts"]


def test_filters_select_exactly_the_matching_alerts(seeded):
    everything = ids(seeded, limit=1000)
    for params, predicate in [
        ({"status": "resolved"}, lambda a: a["status"] == "resolved"),
        ({"status": "firing"}, lambda a: a["status"] == "firing"),
        ({"level": "L1"}, lambda a: a["level"] == "L1"),
        ({"level": "L2,L3"}, lambda a: a["level"] in ("L2", "L3")),
        ({"severity": "warning"}, lambda a: a["severity"] == "warning"),
        ({"service": "api-gateway"}, lambda a: a["service"] == "api-gateway"),
        ({"alertname": "HighCPUUsage"}, lambda a: a["alertname"] == "HighCPUUsage"),
        ({"acked": "false"}, lambda a: not a["acked"]),
        ({"acked": "true"}, lambda a: a["acked"]),
        ({"match": 'severity=~"crit.*"'}, lambda a: a["labels"].get("severity", "").startswith("crit")),
        ({"match": 'instance!=""'}, lambda a: a["labels"].get("instance", "") != ""),
        ({"since": "2026-11-23T08:09:20Z"}, lambda a: a["starts_at"] >= "2026-11-23T08:09:20"),
        ({"until": "2026-11-23T08:09:20Z"}, lambda a: a["starts_at"] < "2026-11-23T08:09:20"),
    ]:
        got = {a["id"] for a in ids(seeded, limit=1000, **params)}
        want = {a["id"] for a in everything if predicate(a)}
        assert got == want, params
    assert len(everything) == 5 + 4 + 1 + 1 + 1 + 1  # b, d, g info, g critical, a single, f unicode

def test_keyset_pages_are_stable_and_complete(seeded):
    seen, cursor = [], None
    while True:
        r = seeded.get("/api/v1/alerts", query_string={"limit": 4, "order": "asc", **({"cursor": cursor} if cursor else {})})
        page = r.get_json()
        seen.extend(a["id"] for a in page["alerts"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == len(ids(seeded, limit=1000))


@pytest.mark.parametrize("query, names", [
    ("colour=red", "colour"),
    ("status=burning", "status"),
    ("level=L4", "level"),
    ("since=yesterday", "since"),
    ("until=2026-11-23T08:00:00", "until"),
    ("limit=0", "limit"),
    ("limit=abc", "limit"),
    ("acked=maybe", "acked"),
    ("match=severity%3D~%22(%22", "match"),
    ("since=2026-11-24T00:00:00Z&until=2026-11-23T00:00:00Z", "since"),
])
def test_unknown_filters_and_bad_values_are_400_naming_them(client, query, names):
    r = client.get(f"/api/v1/alerts?{query}")
    assert r.status_code == 400
    body = r.get_json()
    assert names in body["detail"]


def test_one_alert_with_its_timeline_and_unicode_intact(seeded):
    f = json.loads(raw("f_unicode_special_chars"))["alerts"][0]
    alert = next(a for a in ids(seeded, limit=1000) if a["fingerprint"] == f["fingerprint"])
    shown = seeded.get(f"/api/v1/alerts/{alert['id']}").get_json()
    assert shown["labels"] == f["labels"] and shown["annotations"] == f["annotations"]
    assert [e["kind"] for e in shown["timeline"]] == ["received", "notified"]
    assert shown["timeline"][0]["to_level"] == shown["level"]
    assert shown["timeline"][1]["details"]["status"] == "pending"  # the first page, queued in the same commit


def test_timeline_ids_are_unique_and_say_what_they_number(client):
    """Events and messages are numbered apart: the first alert's `received` event and its first message are both 1
    in their tables, and used to share `"id": 1` in one timeline."""
    post(client, raw("a_single_firing"))
    [alert] = ids(client)
    timeline = client.get(f"/api/v1/alerts/{alert['id']}").get_json()["timeline"]
    assert [(e["id"], e["kind"]) for e in timeline] == [("event:1", "received"), ("notification:1", "notified")]
    assert timeline[1]["details"]["notification_id"] == 1


def test_unknown_id_is_404(client):
    r = client.get("/api/v1/alerts/999999")
    assert r.status_code == 404 and r.get_json()["error"] == "not_found"


def test_read_routes_answer_503_not_500_when_the_database_is_unavailable(tmp_path):
    from prometheus_client import CollectorRegistry

    from receiver.app import create_app
    from receiver.config import Config

    config = Config.model_validate({"database": {"url": f"sqlite:///{tmp_path}/missing-dir/receiver.db"}})
    client = create_app(config, registry=CollectorRegistry()).test_client()
    for path in ("/api/v1/alerts", "/api/v1/notifications", "/api/v1/stats/summary"):
        resp = client.get(path)
        assert resp.status_code == 503, (path, resp.get_json())
        assert resp.headers["Retry-After"] and resp.get_json()["error"] == "storage_unavailable"
