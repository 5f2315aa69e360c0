"""The dashboard through Flask's test client, on SQLite and PostgreSQL: every page shows the API's facts, escapes
what alerts carry, sends a strict CSP; sign-in, roles and CSRF hold; bad input is a clear 4xx, never a 500."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.store import outbox
from receiver.store.db import write_transaction
from receiver.web import dashboard
from receiver.web import dashboard_view as view

from ..support.fixtures import raw
from .support import ESCAPED, SCRIPT, TOKENS, csrf_of, hostile_body, sign_in, token_settings

SEED = ("a_single_firing", "g_routing_info", "g_routing_critical", "f_unicode_special_chars")
PAGES = ("/", "/now/alerts", "/alerts/{hostile}", "/history", "/stats", "/delivery")


def seed(client, headers=None, read_headers=None) -> int:
    """The genuine captures and the hostile alert, through POST /webhook; the hostile alert's id."""
    for name in SEED:
        r = client.post("/webhook", data=raw(name), content_type="application/json", headers=headers or {})
        assert r.status_code == 200, r.data
    r = client.post("/webhook", data=hostile_body(), content_type="application/json", headers=headers or {})
    assert r.status_code == 200, r.data
    alerts = client.get("/api/v1/alerts", headers=read_headers or {}).get_json()["alerts"]
    return next(a["id"] for a in alerts if a["alertname"] == SCRIPT)


@pytest.fixture
def secured(make_config, clock):
    app = create_app(make_config(auth={"tokens": token_settings()}), clock=clock, registry=CollectorRegistry())
    yield app
    app.extensions["alert_receiver"].db.dispose()


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


# --- facts and escaping ----------------------------------------------------------------------------------------


def test_now_lists_every_firing_alert_under_its_level_as_the_api_does(client):
    seed(client)
    html = client.get("/").get_data(as_text=True)
    firing = client.get("/api/v1/alerts", query_string={"status": "firing"}).get_json()["alerts"]
    assert len(firing) == len(SEED) + 1
    sections = {lv: html.split(f'id="h-{lv}"')[1].split("</section>")[0] for lv in ("L1", "L2", "L3")}
    for alert in firing:
        assert f'id="alert-{alert["id"]}" data-alert-id="{alert["id"]}" data-level="{alert["level"]}"' \
               in sections[alert["level"]]
    # Counts per level, and the time at level / next step from the alert's own timers (FixedClock: exact).
    assert f'{sum(a["level"] == "L3" for a in firing)} firing' in sections["L3"]
    assert "escalates to L2 in 5m 00s" in sections["L3"]  # received at T0, default L3 escalate_after 5m
    assert "repeats in 15m 00s" in sections["L1"]


def test_alert_page_shows_labels_annotations_generator_and_timeline(client):
    hostile = seed(client)
    alert = client.get(f"/api/v1/alerts/{hostile}").get_json()
    html = client.get(f"/alerts/{hostile}").get_data(as_text=True)
    assert f'href="{alert["generator_url"].replace("&", "&amp;")}"' in html
    assert "https://runbooks.example.com/HighCPUUsage" in html
    assert html.count(ESCAPED) >= 3  # the name, the `note` label, the summary
    kinds = [e["kind"] for e in alert["timeline"]]
    assert kinds[:1] == ["received"] and "notified" in kinds
    assert "firing to log: pending after 0 attempt(s)" in html  # the outbox row, with its delivery status


def test_the_hostile_label_is_text_on_every_page(client):
    hostile = seed(client)
    for path in PAGES:
        html = client.get(path.format(hostile=hostile)).get_data(as_text=True)
        assert ESCAPED in html, path
        assert SCRIPT not in html, path


def test_statistics_are_the_apis_numbers(client, clock):
    seed(client)
    api = client.get("/api/v1/stats/summary").get_json()  # the last 7 days, as the page's default
    html = client.get("/stats").get_data(as_text=True)
    assert f'id="total">{api["total"]}<' in html
    for key in ("mtta", "mttr"):  # mean · min · p50 · p90 · max, as the API (issue #19)
        d = api[f"{key}_seconds"]
        shown = " · ".join(view.duration(d[k]) if d[k] is not None else "–" for k in ("mean", "min", "p50", "p90", "max"))
        assert f'id="{key}" title="percentiles: {d["method"]}">{shown}<' in html
    trends = client.get("/api/v1/stats/trends", query_string={"interval": "day"}).get_json()
    # The chart draws the API's series: one bar segment per non-zero (bucket, severity), titled with its count.
    segments = re.findall(r"<title>[^<]* · ([^<:]+): (\d+)</title>", html)
    assert sorted((k, int(n)) for k, n in segments) == sorted(
        (k, n) for k, counts in trends["series"].items() for n in counts if n)
    assert '<svg class="chart"' in html and "<script" not in html.split('<svg class="chart"')[1].split("</svg>")[0]
    health = client.get("/api/v1/stats/services/api-gateway/health").get_json()
    assert f'value="{health["score"]}"' in html


def test_history_filters_and_pages_like_the_api(client):
    seed(client)
    query = {"level": "L2", "limit": "1"}
    api = client.get("/api/v1/alerts", query_string=query).get_json()
    html = client.get("/history", query_string={**query, "status": "", "since": ""}).get_data(as_text=True)
    assert f'/alerts/{api["alerts"][0]["id"]}"' in html and api["next_cursor"]
    assert f'cursor={api["next_cursor"]}' in html
    assert 'href="/history/export.csv?level=L2"' in html and 'href="/api/v1/alerts/export.csv?level=L2"' in html
    mine = client.get("/history/export.csv?level=L2")
    theirs = client.get("/api/v1/alerts/export.csv?level=L2")
    assert mine.status_code == 200 and mine.data == theirs.data and mine.mimetype == "text/csv"


def test_delivery_shows_depth_and_dead_letters_and_retries_them(client, db, clock):
    hostile = seed(client)
    now = clock.now()
    with write_transaction(db) as conn:
        claimed = outbox.claim_due(conn, now=now, worker="t", lease=dt.timedelta(minutes=1), limit=1)
        outbox.record(conn, [outbox.Outcome(claimed[0].id, "dead", True, now, error="400 Bad Request")],
                        worker="t")
    dead_id = claimed[0].id
    html = client.get("/delivery").get_data(as_text=True)
    depth = client.get("/api/v1/notifications", query_string={"status": "pending"}).get_json()["count"]
    assert f'id="depth">{depth}<' in html and 'id="dead-count">1<' in html
    assert f'id="dead-{dead_id}"' in html and "400 Bad Request" in html
    assert ESCAPED in html  # the alerts a message carries are named, escaped
    r = client.post(f"/delivery/{dead_id}/retry", data={"csrf": csrf_of(html)}, headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.get_json()["ok"]
    assert client.get(f"/api/v1/notifications/{dead_id}").get_json()["status"] == "pending"
    again = client.post(f"/delivery/{dead_id}/retry", data={"csrf": csrf_of(html)})
    assert again.status_code == 409 and "only failed or dead" in again.get_data(as_text=True)


def test_ack_and_resolve_from_the_page_are_the_engines_actions(client):
    hostile = seed(client)
    csrf = csrf_of(client.get("/").get_data(as_text=True))
    r = client.post(f"/alerts/{hostile}/ack", data={"csrf": csrf, "comment": f"looking {SCRIPT}", "next": "/"})
    assert r.status_code == 303 and r.headers["Location"] == "/"
    alert = client.get(f"/api/v1/alerts/{hostile}").get_json()
    assert alert["acked"] and alert["next_action_at"] is None
    acked = [e for e in alert["timeline"] if e["kind"] == "acked"]
    assert acked[0]["actor"] == "dashboard" and acked[0]["comment"] == f"looking {SCRIPT}"
    page = client.get(f"/alerts/{hostile}").get_data(as_text=True)
    assert f"looking {ESCAPED}" in page and "acknowledged by dashboard" in page
    r = client.post(f"/alerts/{hostile}/resolve", data={"csrf": csrf}, headers={"Accept": "application/json"})
    assert r.get_json()["changed"] is True
    r = client.post(f"/alerts/{hostile}/ack", data={"csrf": csrf}, headers={"Accept": "application/json"})
    assert r.status_code == 409 and "resolved" in r.get_json()["detail"]


# --- headers ---------------------------------------------------------------------------------------------------


def test_every_page_has_a_strict_csp_and_no_inline_code(client):
    hostile = seed(client)
    for path in PAGES + ("/assets/dashboard.js", "/assets/dashboard.css"):
        resp = client.get(path.format(hostile=hostile))
        assert resp.status_code == 200, path
        csp = resp.headers["Content-Security-Policy"]
        assert csp == dashboard.CSP and "unsafe" not in csp and "default-src 'none'" in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff" and resp.headers["X-Frame-Options"] == "DENY"
        if resp.mimetype == "text/html":
            html = resp.get_data(as_text=True)
            assert not re.search(r"<script(?![^>]*\bsrc=)", html), path  # no inline script
            assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html), path  # no inline style or handler
            assert resp.headers["Cache-Control"] == "no-store"


# --- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path,status,says", [
    ("/history?level=L9", 400, "level: L9 not one of L1, L2, L3"),
    ("/history?bogus=1", 400, "unknown query parameter(s): bogus"),
    ("/history?since=2026-11-23T09:00&until=2026-11-23T08:00", 400, "since must be before until"),
    ("/history?match=team%3D%3D%22x", 400, "match:"),
    ("/stats?period=2y", 400, "period: one of 1d, 7d, 30d, 90d"),
    ("/alerts/424242", 404, "no alert with id 424242"),
], ids=["level", "unknown-param", "since-after-until", "matcher", "period", "no-alert"])
def test_bad_input_is_a_clear_page_not_a_500(client, path, status, says):
    resp = client.get(path)
    assert resp.status_code == status and resp.mimetype == "text/html"
    assert says.lower() in resp.get_data(as_text=True).lower()


# --- sign-in, roles, CSRF --------------------------------------------------------------------------------------


def test_every_dashboard_route_states_its_access(secured):
    rules = [r for r in secured.url_map.iter_rules() if r.endpoint in dashboard.ENDPOINTS]
    assert {r.endpoint for r in rules} == dashboard.ENDPOINTS
    for rule in rules:
        view = secured.view_functions[rule.endpoint]
        assert hasattr(view, "required_role") and view.access, rule.rule


@pytest.mark.parametrize("path", ["/", "/alerts/1", "/history", "/stats", "/delivery", "/history/export.csv"])
def test_signed_out_pages_redirect_to_sign_in(secured, path):
    client = secured.test_client()
    resp = client.get(path, headers=bearer("write"))  # a bearer header is for the API, not for pages
    assert resp.status_code == 303 and resp.headers["Location"] == f"/login?next={path}"
    assert client.get("/now/alerts").status_code == 401


def test_sign_in_read_token_reads_but_cannot_act(secured):
    client = secured.test_client()
    hostile = seed(client, bearer("webhook"), bearer("read"))
    assert sign_in(client, "not-a-token").status_code == 401
    assert sign_in(client, TOKENS["webhook"]).status_code == 401  # a webhook token cannot read
    r = sign_in(client, TOKENS["read"], "/stats")
    assert r.status_code == 303 and r.headers["Location"] == "/stats"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKENS["read"] not in cookie
    for path in PAGES:
        assert client.get(path.format(hostile=hostile)).status_code == 200, path
    html = client.get("/").get_data(as_text=True)
    assert "Acknowledge" not in html and "Sign in with a write token" in html
    r = client.post(f"/alerts/{hostile}/ack", data={"csrf": csrf_of(html)})
    assert r.status_code == 403 and "has role read" in r.get_data(as_text=True)
    assert not client.get(f"/api/v1/alerts/{hostile}", headers=bearer("read")).get_json()["acked"]


def test_sign_in_write_token_acts_and_the_actor_is_the_token(secured):
    client = secured.test_client()
    hostile = seed(client, bearer("webhook"), bearer("read"))
    sign_in(client, TOKENS["write"])
    html = client.get("/").get_data(as_text=True)
    assert f'aria-label="Acknowledge {ESCAPED} #{hostile}"' in html
    r = client.post(f"/alerts/{hostile}/ack", data={"csrf": csrf_of(html)}, headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.get_json()["changed"]
    assert client.get(f"/api/v1/alerts/{hostile}", headers=bearer("read")).get_json()["acked_by"] == "oncall"
    # Signing out ends the session: the cookie no longer reads anything.
    client.post("/logout", data={"csrf": csrf_of(html)})
    assert client.get("/").status_code == 303


def test_a_session_ends_when_its_token_is_removed_from_the_config(secured, make_config, clock):
    client = secured.test_client()
    sign_in(client, TOKENS["read"])
    assert client.get("/").status_code == 200
    rotated = [t for t in token_settings() if t["name"] != "analysts"] + \
              [{"name": "analysts", "token": "a-new-read-token-0000", "role": "read"}]
    reloaded = create_app(make_config(auth={"tokens": rotated}), clock=clock, registry=CollectorRegistry())
    try:
        other = reloaded.test_client()
        other.set_cookie(*_session_cookie(client))
        assert other.get("/").status_code == 303
    finally:
        reloaded.extensions["alert_receiver"].db.dispose()


def _session_cookie(client) -> tuple[str, str]:
    cookie = client.get_cookie("alert_receiver_dashboard")
    return cookie.key, cookie.value


def test_a_forged_or_stale_cookie_is_a_signed_out_session(secured):
    client = secured.test_client()
    sign_in(client, TOKENS["read"])
    key, value = _session_cookie(client)
    client.set_cookie(key, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get("/").status_code == 303


@pytest.mark.parametrize("case", ["no-token", "wrong-token", "other-origin", "cross-site", "null-origin"])
def test_csrf_refuses_forged_posts_and_changes_nothing(client, case):
    hostile = seed(client)
    csrf = csrf_of(client.get("/").get_data(as_text=True))
    data, headers = {"csrf": csrf}, {}
    if case == "no-token":
        data = {}
    elif case == "wrong-token":
        data = {"csrf": csrf[:-1] + ("x" if csrf[-1] != "x" else "y")}
    elif case == "other-origin":
        headers = {"Origin": "https://evil.example"}
    elif case == "cross-site":
        headers = {"Sec-Fetch-Site": "cross-site"}
    else:
        headers = {"Origin": "null"}
    for path in (f"/alerts/{hostile}/ack", f"/alerts/{hostile}/resolve", "/delivery/1/retry", "/logout"):
        resp = client.post(path, data=data, headers=headers)
        assert resp.status_code == 403, (path, resp.status_code)
    alert = client.get(f"/api/v1/alerts/{hostile}").get_json()
    assert alert["status"] == "firing" and not alert["acked"]
    assert client.get("/api/v1/notifications/1").get_json()["status"] == "pending"


def test_sign_in_itself_needs_the_csrf_token_and_never_redirects_off_site(secured):
    client = secured.test_client()
    client.get("/login")
    assert client.post("/login", data={"token": TOKENS["read"]}).status_code == 403
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        r = sign_in(client, TOKENS["read"], target)
        assert r.status_code == 303 and r.headers["Location"] == "/", target
