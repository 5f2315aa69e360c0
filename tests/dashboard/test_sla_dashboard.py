"""The dashboard and SLAs, through Flask's test client on SQLite and PostgreSQL: the Now page shows the time left
before each target of an unacknowledged alert's level and says when one is breached; the Statistics page shows the
summary's `sla` numbers."""

from __future__ import annotations

import datetime as dt

from receiver.engine.sla_breaches import check_breaches
from receiver.web import dashboard_view as view

from ..conftest import T0
from ..support.fixtures import raw


def alert_html(client, alert_id: int) -> str:
    html = client.get("/now/alerts").get_data(as_text=True)
    return html.split(f'id="alert-{alert_id}"')[1].split("</li>")[0]


def test_now_shows_time_left_then_breached(client, clock, writes, config):
    for name in ("g_routing_critical", "g_routing_info"):
        assert client.post("/webhook", data=raw(name), content_type="application/json").status_code == 200
    alerts = {a["severity"]: a for a in client.get("/api/v1/alerts").get_json()["alerts"]}
    critical, info = alerts["critical"]["id"], alerts["info"]["id"]
    clock.set(T0 + dt.timedelta(minutes=3))
    assert "SLA: acknowledge in 2m 00s · resolve in 27m 00s" in alert_html(client, critical)
    assert "SLA" not in alert_html(client, info)  # L3: no target
    clock.set(T0 + dt.timedelta(minutes=5, seconds=30))  # past the target, before the engine's tick
    assert ('class="sla breached">SLA breached: not acknowledged within 5m 00s · resolve in 24m 30s'
            in alert_html(client, critical))
    check_breaches(writes, config, clock.now())
    assert "SLA breached: not acknowledged within 5m 00s" in alert_html(client, critical)
    assert client.post(f"/api/v1/alerts/{critical}/ack", json={"actor": "a"}).status_code == 200
    assert "SLA" not in alert_html(client, critical)  # acknowledged: its SLA clock is no longer the page's
    timeline = client.get(f"/alerts/{critical}").get_data(as_text=True)
    assert "SLA breached: not acknowledged within 5m 00s at L1" in timeline


def test_statistics_page_shows_the_summarys_sla(client, clock, writes, config):
    assert client.post("/webhook", data=raw("g_routing_critical"), content_type="application/json").status_code == 200
    clock.set(T0 + dt.timedelta(minutes=40))
    check_breaches(writes, config, clock.now())
    html = client.get("/stats", query_string={"period": "1d"}).get_data(as_text=True)
    section = html.split('id="h-sla"')[1].split("</section>")[0]
    row = section.split('id="sla-L1-ack"')[1].split("</tr>")[0]
    assert [cell.split("</td>")[0] for cell in row.split("<td>")[3:]] == ["5m 00s", "0", "1", "0", "0", "0.0 %"]
    assert 'id="sla-L2-resolve"' in section and 'id="sla-L3-ack"' not in section
    got = client.get("/api/v1/stats/summary", query_string={"since": "2026-11-22T09:40:00Z",
                                                             "until": "2026-11-23T09:40:00Z"}).get_json()["sla"]
    assert got["L1"]["ack"] == {"target_seconds": 300, "met": 0, "breached": 1, "pending": 0, "ended": 0,
                                "percent": 0.0}


def test_sla_left_is_pure_and_honours_mutes_and_acks():
    target = type("T", (), {"ack": dt.timedelta(minutes=5), "resolve": None})()
    alert = {"level_entered_at": "2026-11-23T09:00:00Z", "status": "firing", "escalate": True}
    assert view.sla_left(alert, T0, target).text == "SLA: acknowledge in 5m 00s"
    assert view.sla_left({**alert, "muted_until": "2026-11-23T10:00:00Z"}, T0, target) is None
    assert view.sla_left({**alert, "acked_at": "2026-11-23T09:01:00Z"}, T0, target) is None
    assert view.sla_left({**alert, "escalate": False}, T0, target) is None
    breached = view.sla_left({**alert, "sla_ack_breached_at": "2026-11-23T09:05:00Z"}, T0, target)
    assert breached.breached and breached.text == "SLA breached: not acknowledged within 5m 00s"
