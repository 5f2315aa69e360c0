"""POST /webhook against both databases, with the genuine Alertmanager 0.25 captures."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from receiver.store.models import Alert, AlertEvent, Notification, NotificationItem, WebhookBody

from ..conftest import table_counts
from ..support.fixtures import TOKEN, captures, raw, raw_bodies, source_of

JSON = "application/json"


def post(client, body: bytes, path: str = "/webhook", **kw):
    return client.post(path, data=body, content_type=kw.pop("content_type", JSON), **kw)


def expected_occurrences() -> set[tuple[str, str]]:
    """Independent of the receiver: (fingerprint, status at the end) for every alert the captures mention,
    replaying them in file order with the occurrence rules (each capture here is one firing period)."""
    final: dict[str, str] = {}
    for cap in captures():
        for a in cap["body"]["alerts"]:
            fp = a["fingerprint"]
            if a["status"] == "resolved" or final.get(fp) == "resolved":
                final[fp] = "resolved"
            else:
                final.setdefault(fp, "firing")
    return set(final.items())


def stored_occurrences(client) -> set[tuple[str, str]]:
    got = []
    cursor = None
    while True:
        r = client.get("/api/v1/alerts", query_string={"limit": 7, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        page = r.get_json()
        got.extend((a["fingerprint"], a["status"]) for a in page["alerts"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(got) == len(set(got)), "an alert was listed twice"
    return set(got)


def test_every_capture_is_accepted_and_listed_exactly_once(client, db):
    for cap in captures():
        r = post(client, raw(cap["_file"][:-5]), "/webhook/" + source_of(cap) if source_of(cap) else "/webhook")
        assert r.status_code == 200, (cap["_file"], r.get_json())
    assert stored_occurrences(client) == expected_occurrences()
    before = table_counts(db)
    # Alertmanager retries and repeats are byte-identical: posting everything again changes nothing at all.
    for name, body in raw_bodies().items():
        assert post(client, body).status_code == 200
    assert table_counts(db) == before


def test_first_post_writes_occurrence_event_and_first_notification(client, db):
    r = post(client, raw("b_group_5_firing"))
    assert r.status_code == 200
    assert r.get_json()["new"] == 5
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Alert)).scalar_one() == 5
        kinds = conn.execute(sa.select(AlertEvent.kind)).scalars().all()
        assert kinds == ["received"] * 5
        # One group, one level, one channel (log): one message carrying five intents.
        messages = conn.execute(sa.select(Notification.channel, Notification.kind, Notification.level)).all()
        assert messages == [("log", "firing", "L1")]  # severity critical
        assert conn.execute(sa.select(sa.func.count()).select_from(NotificationItem)).scalar_one() == 5


def test_resolved_snapshot_closes_with_alertmanagers_ends_at_and_records_an_event(client, db):
    post(client, raw("b_group_5_firing"))
    r = post(client, raw("c_group_resolved"))
    assert r.get_json()["resolved"] == 5
    resolved_body = json.loads(raw("c_group_resolved"))
    ends = {a["fingerprint"]: a["endsAt"] for a in resolved_body["alerts"]}
    alerts = client.get("/api/v1/alerts?status=resolved").get_json()["alerts"]
    assert len(alerts) == 5
    for a in alerts:
        assert a["ends_at"][:23] == ends[a["fingerprint"]][:23]
        timeline = client.get(f"/api/v1/alerts/{a['id']}").get_json()["timeline"]
        events = [e["kind"] for e in timeline if e["kind"] != "notified"]
        assert events == ["received", "resolved"]
        assert [e["details"]["kind"] for e in timeline if e["kind"] == "notified"] == ["firing", "resolved"]
    # Resolution notices go to the channel that was told (log), one message for the group.
    with db.connect() as conn:
        rows = conn.execute(sa.select(Notification.kind, Notification.channel).order_by(Notification.id)).all()
    assert rows == [("firing", "log"), ("resolved", "log")]


def test_resolution_is_final_a_late_firing_snapshot_changes_nothing(client, db):
    post(client, raw("b_group_5_firing"))
    post(client, raw("c_group_resolved"))
    before = table_counts(db)
    r = post(client, raw("b_group_5_firing"))  # a late copy from an HA peer
    assert r.get_json().get("stale") == 5
    assert table_counts(db) == before


def test_truncated_payload_never_resolves_the_missing_alerts(client):
    r = post(client, raw("e_max_alerts_truncated"))
    assert r.get_json()["truncated_alerts"] == 7
    alerts = client.get("/api/v1/alerts").get_json()["alerts"]
    assert {a["status"] for a in alerts} == {"firing"} and len(alerts) == 3


def test_empty_alerts_is_a_no_op(client, db):
    body = json.loads(raw("a_single_firing"))
    body["alerts"] = []
    before = table_counts(db)
    r = post(client, json.dumps(body).encode())
    assert r.status_code == 200
    assert {k: v for k, v in table_counts(db).items() if k != "webhook_bodies"} == {
        k: v for k, v in before.items() if k != "webhook_bodies"}


def test_source_name_is_kept_and_raw_body_stored_once(client, db):
    body = raw("g_routing_critical")
    assert post(client, body, "/webhook/critical-webhook").status_code == 200
    assert post(client, body, "/webhook/critical-webhook").status_code == 200
    alert = client.get("/api/v1/alerts").get_json()["alerts"][0]
    assert alert["source"] == "critical-webhook"
    assert alert["level"] == "L1"
    with db.connect() as conn:
        stored = conn.execute(sa.select(WebhookBody.body, WebhookBody.source)).all()
    assert stored == [(body, "critical-webhook")]


def test_fingerprint_is_computed_when_the_sender_omits_it(client):
    body = json.loads(raw("a_single_firing"))
    expected = body["alerts"][0].pop("fingerprint")
    body["unknown_future_field"] = {"x": 1}
    body["alerts"][0]["notification_reason"] = "new"
    assert post(client, json.dumps(body).encode()).status_code == 200
    assert client.get("/api/v1/alerts").get_json()["alerts"][0]["fingerprint"] == expected


def test_earliest_starts_at_is_kept(client):
    body = json.loads(raw("a_single_firing"))
    post(client, json.dumps(body).encode())
    later = dict(body, alerts=[dict(body["alerts"][0], startsAt="2026-11-23T08:10:00.123456789Z")])
    earlier = dict(body, alerts=[dict(body["alerts"][0], startsAt="2026-11-23T08:00:00.5Z")])
    assert post(client, json.dumps(later).encode()).get_json().get("duplicate") == 1
    assert post(client, json.dumps(earlier).encode()).get_json().get("updated") == 1
    alerts = client.get("/api/v1/alerts").get_json()["alerts"]
    assert len(alerts) == 1 and alerts[0]["starts_at"] == "2026-11-23T08:00:00.500000Z"


def _single(**changes) -> bytes:
    body = json.loads(raw("a_single_firing"))
    body.update(changes)
    return json.dumps(body).encode()


BAD_INPUTS = [
    pytest.param(b'{"version": "4", "alerts": [', JSON, 400, "malformed_json", id="malformed-json"),
    pytest.param(b"\xff\xfe\x00garbage", JSON, 400, "malformed_json", id="invalid-utf8"),
    pytest.param(b"[1, 2]", JSON, 422, "invalid_payload", id="not-an-object"),
    pytest.param(_single(version="3"), JSON, 422, "unsupported_version", id="version-3"),
    pytest.param(b'{"version": "4", "status": "firing"}', JSON, 422, "invalid_payload", id="missing-alerts"),
    pytest.param(_single(alerts=[{"status": "firing", "labels": {"a": "b"}, "startsAt": "yesterday"}]), JSON, 422,
                 "invalid_payload", id="bad-timestamp"),
    pytest.param(_single(alerts=[{"status": "burning", "labels": {}, "startsAt": "2026-11-23T08:00:00Z"}]), JSON, 422,
                 "invalid_payload", id="bad-status"),
    pytest.param(_single(alerts=[{"status": "firing", "labels": {"a": "b"}, "startsAt": "2026-11-23T08:00:00"}]), JSON,
                 422, "invalid_payload", id="timestamp-without-zone"),
    pytest.param(raw("a_single_firing"), "text/plain", 415, "unsupported_media_type", id="text-plain"),
]


@pytest.mark.parametrize("body, content_type, status, reason", BAD_INPUTS)
def test_bad_input_gets_its_status_a_json_error_a_dead_letter_and_no_partial_write(client, db, body, content_type,
                                                                                     status, reason):
    before = table_counts(db)
    r = post(client, body, content_type=content_type)
    assert r.status_code == status
    err = r.get_json()
    assert err["error"] == reason and err["detail"]
    after = table_counts(db)
    assert after["rejected_webhooks"] == before["rejected_webhooks"] + 1
    assert {k: v for k, v in after.items() if k != "rejected_webhooks"} == {
        k: v for k, v in before.items() if k != "rejected_webhooks"}
    listed = client.get("/api/v1/webhooks/rejected").get_json()["rejected"]
    assert listed[0]["reason"] == reason and listed[0]["status_code"] == status
    assert listed[0]["id"] == err["dead_letter_id"]


def test_error_names_the_bad_field(client):
    body = json.loads(raw("b_group_5_firing"))
    body["alerts"][3]["startsAt"] = "not a time"
    r = post(client, json.dumps(body).encode())
    assert r.status_code == 422
    assert r.get_json()["path"] == "alerts[3].startsAt"
    # Nothing of the four good alerts was stored.
    assert client.get("/api/v1/alerts").get_json()["alerts"] == []


def test_oversized_body_is_413_above_the_configured_limit(make_config, clock, db_url):
    from prometheus_client import CollectorRegistry

    from receiver.app import create_app

    app = create_app(make_config(server={"max_body_size": "2KiB"}), clock=clock, registry=CollectorRegistry())
    client = app.test_client()
    assert post(client, raw("a_single_firing")).status_code == 200  # 1,258 bytes
    r = post(client, raw("b_group_5_firing"))  # about 4 kB
    assert r.status_code == 413 and r.get_json()["error"] == "body_too_large"
    assert client.get("/api/v1/webhooks/rejected").get_json()["rejected"][0]["reason"] == "body_too_large"
    app.extensions["alert_receiver"].db.dispose()


def test_replay_of_a_dead_letter_after_the_fix(client, db):
    body = json.loads(raw("a_single_firing"))
    body["version"] = "3"  # a sender with the wrong version...
    r = post(client, json.dumps(body).encode())
    dead_id = r.get_json()["dead_letter_id"]
    # ...cannot be replayed as it is,
    assert client.post(f"/api/v1/webhooks/rejected/{dead_id}/replay").status_code == 422
    # but a body refused for its content type can, once the sender is fixed.
    r = post(client, raw("a_single_firing"), content_type="text/plain")
    dead_id = r.get_json()["dead_letter_id"]
    r = client.post(f"/api/v1/webhooks/rejected/{dead_id}/replay")
    assert r.status_code == 200 and r.get_json()["new"] == 1
    shown = client.get(f"/api/v1/webhooks/rejected/{dead_id}").get_json()
    assert shown["replay_status"] == 200 and shown["replayed_at"]
    assert len(client.get("/api/v1/alerts").get_json()["alerts"]) == 1


def test_dead_letters_are_bounded(make_config, clock):
    from prometheus_client import CollectorRegistry

    from receiver.app import create_app

    app = create_app(make_config(retention={"rejected_max": 3}), clock=clock, registry=CollectorRegistry())
    client = app.test_client()
    ids = [post(client, b"{", ).get_json()["dead_letter_id"] for _ in range(5)]
    listed = [r["id"] for r in client.get("/api/v1/webhooks/rejected").get_json()["rejected"]]
    assert listed == ids[:-4:-1]
    app.extensions["alert_receiver"].db.dispose()


class TestAuth:
    @pytest.fixture
    def client(self, auth_config, clock):
        from prometheus_client import CollectorRegistry

        from receiver.app import create_app

        app = create_app(auth_config, clock=clock, registry=CollectorRegistry())
        yield app.test_client()
        app.extensions["alert_receiver"].db.dispose()

    @pytest.mark.parametrize("headers, status", [
        pytest.param({}, 401, id="none"),
        pytest.param({"Authorization": "Bearer wrong"}, 401, id="wrong-token"),
        pytest.param({"Authorization": "Bearer read-token-0123"}, 403, id="read-role"),
        pytest.param({"Authorization": f"Bearer {TOKEN}"}, 200, id="webhook-role"),
        pytest.param({"Authorization": "Basic " + __import__("base64").b64encode(f"am:{TOKEN}".encode()).decode()},
                     200, id="basic-auth"),
        pytest.param({"Authorization": "Bearer admin-token-4567"}, 200, id="admin"),
    ])
    def test_webhook_needs_a_webhook_token(self, client, headers, status):
        r = post(client, raw("a_single_firing"), headers=headers)
        assert r.status_code == status
        if status == 401:
            assert r.get_json()["error"] == "unauthorized"
            assert "WWW-Authenticate" in r.headers

    def test_history_needs_read(self, client):
        assert client.get("/api/v1/alerts").status_code == 401
        assert client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 403
        assert client.get("/api/v1/alerts", headers={"Authorization": "Bearer read-token-0123"}).status_code == 200


def test_raw_bodies_are_pruned_after_their_retention(client, db, clock):
    import datetime as dt

    post(client, raw("a_single_firing"))
    clock.advance(dt.timedelta(days=2).total_seconds())
    post(client, raw("b_group_5_firing"))  # within the hour of the last prune: nothing pruned yet
    clock.advance(dt.timedelta(days=1, hours=1).total_seconds())
    post(client, raw("g_routing_info"))  # a is now 3 days 1 hour old, b 1 day 1 hour
    with db.connect() as conn:
        kept = conn.execute(sa.select(WebhookBody.body).order_by(WebhookBody.id)).scalars().all()
    assert kept == [raw("b_group_5_firing"), raw("g_routing_info")]
