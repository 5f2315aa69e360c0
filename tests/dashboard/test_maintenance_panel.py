"""The Now page's maintenance panel and muted alerts, on SQLite and PostgreSQL at the injected clock's moment (Monday
2026-11-23 09:00Z): active and upcoming windows with what they mute and until when (no panel without any, a comment
is escaped), a muted alert marked "muted until" in the list, and its timeline saying why."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app

from ..engine.harness import body_with


@pytest.fixture
def client(make_config, clock):
    config = make_config(channels={"chat": {"type": "log"}}, routes=[{"levels": {"L1": ["chat"], "L2": ["chat"],
                                                                                "L3": ["chat"]}}])
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    yield app.test_client()
    app.extensions["alert_receiver"].writes.close()
    app.extensions["alert_receiver"].db.dispose()


def rows(html: str) -> list[list[str]]:
    assert html.count('id="h-maintenance"') == 1
    body = html.split('id="h-maintenance"')[1].split("<tbody>")[1].split("</tbody>")[0]
    return [[html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip())
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_no_panel_without_windows(client):
    assert 'id="h-maintenance"' not in client.get("/").get_data(as_text=True)


def test_active_and_upcoming_windows_and_a_muted_alert(client, clock):
    active = client.post("/api/v1/maintenance", json={"matchers": ['service="db"'], "end": "2026-11-23T10:30:00Z",
                                                      "comment": "<b>failover</b>", "actor": "erin"}).get_json()
    later = client.post("/api/v1/maintenance", json={"matchers": ['team="ops"', 'env=~"prod|dr"'],
                                                     "start": "2026-11-24T06:00:00Z",
                                                     "end": "2026-11-24T07:00:00Z"}).get_json()
    ended = client.post("/api/v1/maintenance", json={"matchers": ['a="b"'], "end": "2026-11-23T12:00:00Z"}).get_json()
    assert client.post(f"/api/v1/maintenance/{ended['id']}/end").status_code == 200
    assert client.post("/webhook", json=body_with("g_routing_info", service="db")).status_code == 200

    html = client.get("/").get_data(as_text=True)
    assert rows(html) == [
        [str(active["id"]), 'service="db"', "active since 2026-11-23 09:00:00 UTC",
         "2026-11-23 10:30:00 UTC (in 1h 30m)", "<b>failover</b>", "erin"],
        [str(later["id"]), 'team="ops" env=~"prod|dr"', "2026-11-24 06:00:00 UTC (in 21h 00m)",
         "2026-11-24 07:00:00 UTC (in 22h 00m)", "–", "anonymous"],
    ]
    assert "&lt;b&gt;failover&lt;/b&gt;" in html  # escaped, shown as text
    assert "muted until 2026-11-23 10:30:00 UTC; tells L3 again in 1h 30m" in html

    alert_id = client.get("/api/v1/alerts").get_json()["alerts"][0]["id"]
    page = client.get(f"/alerts/{alert_id}").get_data(as_text=True)
    assert f"muted by maintenance window #{active['id']} until 2026-11-23 10:30:00 UTC" in page
