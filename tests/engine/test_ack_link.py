"""One-click acknowledge links carried by every message: GET shows a confirm page (link previews must not ack),
POST acks; forged, tampered and expired links are refused."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.engine import links

from .harness import Ladder
from ..support.fixtures import raw


@pytest.fixture
def lad(make_config, clock):
    config = make_config(channels={"chat": {"type": "log"}}, routes=[{"levels": {"L1": ["chat"], "L2": ["chat"], "L3": ["chat"]}}],
                         server={"public_url": "https://alerts.example.org/"})
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    ladder = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
    yield ladder
    ladder.close()
    app.extensions["alert_receiver"].db.dispose()


def test_the_link_in_a_message_acks_after_confirmation(lad):
    doc = json.loads(raw("g_routing_critical"))
    doc["alerts"][0]["labels"]["note"] = "<script>alert(1)</script>"
    doc["alerts"][0].pop("fingerprint", None)
    lad.post(doc)
    lad.deliver()
    [message] = lad.channels["chat"].sent
    alert = message.alerts[0]
    assert alert.url == f"https://alerts.example.org/api/v1/alerts/{alert.id}"
    assert alert.ack_url.startswith("https://alerts.example.org/a/")
    path = alert.ack_url.removeprefix("https://alerts.example.org")
    page = lad.client.get(path)
    assert page.status_code == 200 and b"Acknowledge" in page.data
    assert b"<script>alert(1)" not in page.data and b"&lt;script&gt;" in page.data
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert lad.client.get(f"/api/v1/alerts/{alert.id}").get_json()["acked_at"] is None  # GET never acks
    done = lad.client.post(path, data={"actor": "erin"})
    assert done.status_code == 200 and b"Acknowledged" in done.data
    assert lad.client.get(f"/api/v1/alerts/{alert.id}").get_json()["acked_by"] == "erin"
    assert b"Already acknowledged" in lad.client.post(path, data={"actor": "erin"}).data


def test_forged_tampered_and_expired_links_are_refused(lad, clock):
    lad.post("g_routing_critical")
    aid = lad.client.get("/api/v1/alerts").get_json()["alerts"][0]["id"]
    key = links.link_key(lad.writes, now=clock.now())
    good = links.make_token(key, aid, expires=clock.now() + dt.timedelta(hours=1))
    forged = links.make_token(b"x" * 32, aid, expires=clock.now() + dt.timedelta(hours=1))
    tampered = good[:-2] + ("AA" if good[-2:] != "AA" else "BB")
    expired = links.make_token(key, aid, expires=clock.now() - dt.timedelta(seconds=1))
    for token in (forged, tampered, expired, "not-a-token"):
        assert lad.client.get(f"/a/{token}").status_code == 404
        assert lad.client.post(f"/a/{token}", data={"actor": "mallory"}).status_code == 404
    assert b"expired" in lad.client.get(f"/a/{expired}").data
    assert lad.client.get("/api/v1/alerts").get_json()["alerts"][0]["acked_at"] is None
    assert lad.client.get(f"/a/{good}").status_code == 200
