"""POST /webhooks/pagerduty: signed V3 webhooks mirror acks and resolutions made in PagerDuty."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.channels.pagerduty import dedup_key

from ..support.fixtures import raw

SECRET = "pd-webhook-secret-123"


@pytest.fixture
def pd_client(make_config, clock):
    config = make_config(channels={"pd": {"type": "pagerduty", "routing_key": "r" * 32, "webhook_secret": SECRET}},
                         routes=[{"levels": {"L1": ["pd"], "L2": ["pd"], "L3": ["pd"]}}])
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    yield app.test_client()
    app.extensions["alert_receiver"].db.dispose()


_IDS = itertools.count(1)


def event(event_type: str, key: str, agent: str = "Alice Oncall") -> bytes:
    """A V3 event as PagerDuty sends it, with an id of its own (a repeated id is a replay: tests/security)."""
    return json.dumps({"event": {"id": f"01ABC{next(_IDS):05d}", "event_type": event_type, "resource_type": "incident",
                                 "occurred_at": "2026-11-23T09:01:00Z", "agent": {"summary": agent, "type": "user_reference"},
                                 "data": {"id": "Q1", "type": "incident", "status": "acknowledged",
                                          "incident_key": key}}}).encode()


def signed(body: bytes, secret: str = SECRET) -> dict:
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-PagerDuty-Signature": f"v1=deadbeef,v1={sig}", "Content-Type": "application/json"}


def alert_id(client) -> int:
    assert client.post("/webhook", data=raw("g_routing_critical"), content_type="application/json").status_code == 200
    return client.get("/api/v1/alerts").get_json()["alerts"][0]["id"]


def test_ack_then_resolve_in_pagerduty_are_mirrored(pd_client):
    aid = alert_id(pd_client)
    body = event("incident.acknowledged", dedup_key(aid))
    resp = pd_client.post("/webhooks/pagerduty", data=body, headers=signed(body))
    assert resp.status_code == 200 and resp.get_json()["status"] == "applied"
    alert = pd_client.get(f"/api/v1/alerts/{aid}").get_json()
    assert alert["acked_by"] == "Alice Oncall (PagerDuty)"
    again = pd_client.post("/webhooks/pagerduty", data=body, headers=signed(body))  # PagerDuty retries: harmless
    assert again.status_code == 200 and again.get_json()["reason"].startswith("duplicate")
    other = event("incident.acknowledged", dedup_key(aid), agent="Bob")  # another ack of an acked alert
    assert pd_client.post("/webhooks/pagerduty", data=other, headers=signed(other)).get_json()["status"] == "unchanged"
    body = event("incident.resolved", dedup_key(aid))
    assert pd_client.post("/webhooks/pagerduty", data=body, headers=signed(body)).get_json()["status"] == "applied"
    assert pd_client.get(f"/api/v1/alerts/{aid}").get_json()["status"] == "resolved"
    replayed = pd_client.post("/webhooks/pagerduty", data=body, headers=signed(body))
    assert replayed.status_code == 200 and replayed.get_json()["reason"].startswith("duplicate")
    body = event("incident.resolved", dedup_key(aid))  # a new event for an occurrence resolved here already
    resolved_again = pd_client.post("/webhooks/pagerduty", data=body, headers=signed(body))
    assert resolved_again.status_code == 200 and resolved_again.get_json()["status"] == "ignored"


@pytest.mark.parametrize("headers", [{}, {"X-PagerDuty-Signature": "v1=00"}, "wrong-secret"],
                         ids=["missing", "garbage", "other-secret"])
def test_bad_signatures_are_refused_and_change_nothing(pd_client, headers):
    aid = alert_id(pd_client)
    body = event("incident.acknowledged", dedup_key(aid))
    if headers == "wrong-secret":
        headers = signed(body, "not-the-secret")
    resp = pd_client.post("/webhooks/pagerduty", data=body, headers={"Content-Type": "application/json", **headers})
    assert resp.status_code == 401
    assert pd_client.get(f"/api/v1/alerts/{aid}").get_json()["acked_at"] is None


def test_events_that_are_not_ours_are_ignored_with_2xx(pd_client):
    for body in (event("incident.acknowledged", "some-other-tool/123"), event("incident.annotated", dedup_key(1))):
        resp = pd_client.post("/webhooks/pagerduty", data=body, headers=signed(body))
        assert resp.status_code == 200 and resp.get_json()["status"] == "ignored"
    body = b"{not json"
    assert pd_client.post("/webhooks/pagerduty", data=body, headers=signed(body)).status_code == 400


def test_without_a_configured_secret_the_endpoint_is_off(client):
    assert client.post("/webhooks/pagerduty", data=b"{}").status_code == 404
