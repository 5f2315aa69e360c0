"""Issue #15, finding 6: where the dashboard sends a browser after signing in (or after an action) is a path on this
site, whatever the browser would make of `next`. Browsers drop tab and newline from a URL, so `/<TAB>/evil` would
become `//evil` (another host); a newline in a header was a 500."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app

from ..dashboard.support import TOKENS, csrf_of, sign_in, token_settings
from ..support.fixtures import raw

HOSTILE = {
    "tab": "/\t/evil.example",
    "newline": "/\n/evil.example",
    "crlf-header": "/\r\nSet-Cookie: x=1",
    "nul": "/\x00/evil.example",
    "del": "/\x7f/evil.example",
    "two-slashes": "//evil.example/x",
    "three-slashes": "///evil.example",
    "backslash": "/\\evil.example",
    "only-backslashes": "\\\\evil.example",
    "scheme": "https://evil.example/",
    "javascript": "javascript:alert(1)",
    "no-leading-slash": "evil.example",
    "leading-space": " /x",
    "encoded-tab": "/%09/evil.example",
    "encoded-backslash": "/%5c/evil.example",
    "too-long": "/" + "a" * 5000,
}
SAFE = ["/stats", "/history?level=L2&limit=1", "/alerts/7", "/history?match=alertname%3D%22x%22",
        "/history?match=job%3D~%22a%5C.b%22"]


@pytest.fixture
def secured(make_config, clock):
    app = create_app(make_config(auth={"tokens": token_settings()}), clock=clock, registry=CollectorRegistry())
    yield app
    app.extensions["alert_receiver"].db.dispose()


@pytest.mark.parametrize("target", HOSTILE.values(), ids=HOSTILE.keys())
def test_open_mode_sign_in_redirects_only_to_this_site(client, target):
    resp = client.get("/login", query_string={"next": target})
    assert resp.status_code == 303 and resp.headers["Location"] == "/", resp.headers.get("Location")


@pytest.mark.parametrize("target", HOSTILE.values(), ids=HOSTILE.keys())
def test_signing_in_redirects_only_to_this_site(secured, target):
    client = secured.test_client()
    form = client.get("/login", query_string={"next": target})
    assert form.status_code == 200 and 'name="next" value="/"' in form.get_data(as_text=True)
    resp = sign_in(client, TOKENS["read"], target)
    assert resp.status_code == 303 and resp.headers["Location"] == "/", resp.headers.get("Location")


@pytest.mark.parametrize("target", SAFE)
def test_a_path_on_this_site_is_followed(secured, target):
    resp = sign_in(secured.test_client(), TOKENS["read"], target)
    assert resp.status_code == 303 and resp.headers["Location"] == target


@pytest.mark.parametrize("target", HOSTILE.values(), ids=HOSTILE.keys())
def test_an_action_redirects_only_to_this_site(client, target):
    assert client.post("/webhook", data=raw("a_single_firing"), content_type="application/json").status_code == 200
    alert_id = client.get("/api/v1/alerts").get_json()["alerts"][0]["id"]
    csrf = csrf_of(client.get("/").get_data(as_text=True))
    resp = client.post(f"/alerts/{alert_id}/ack", data={"csrf": csrf, "next": target})
    assert resp.status_code == 303 and resp.headers["Location"] == "/", resp.headers.get("Location")
