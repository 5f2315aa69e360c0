"""Issue #15, finding 9: DNS rebinding against the open default. A page on rebind.attacker.example whose name then
resolves to 127.0.0.1 is same-origin with the receiver in the browser's eyes: its requests carry `Host:
rebind.attacker.example` and a matching `Origin`. Without tokens, only a loopback Host, one in
server.allowed_hosts or server.public_url's is served; with tokens, server.allowed_hosts is enforced when set."""

from __future__ import annotations

import pytest
import yaml
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.config import ConfigError, load_config

from ..support.fixtures import raw
from .conftest import TOKENS, bearer, token_settings

EVIL = "rebind.attacker.example"
BROWSER = {"Host": EVIL, "Origin": f"http://{EVIL}", "Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def make_app(make_config, clock):
    apps = []

    def make(**sections):
        app = create_app(make_config(**sections), clock=clock, registry=CollectorRegistry())
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["alert_receiver"].db.dispose()


def firing_alert(client, headers=None) -> int:
    r = client.post("/webhook", data=raw("a_single_firing"), content_type="application/json", headers=headers or {})
    assert r.status_code == 200, r.data
    return client.get("/api/v1/alerts", headers=headers or {}).get_json()["alerts"][0]["id"]


def assert_refused(resp):
    assert resp.status_code == 421, (resp.status_code, resp.data[:200])
    body = resp.get_json()
    assert body["error"] == "host_not_allowed" and "server.allowed_hosts" in body["detail"]


def test_open_mode_refuses_a_rebound_host_for_reads_acks_reload_and_pages(client):
    alert_id = firing_alert(client)
    assert_refused(client.get("/api/v1/alerts", headers=BROWSER))
    assert_refused(client.post(f"/api/v1/alerts/{alert_id}/ack", json={"actor": "x"}, headers=BROWSER))
    assert_refused(client.post("/-/reload", headers=BROWSER))
    assert_refused(client.get("/metrics", headers=BROWSER))
    assert_refused(client.get("/", headers=BROWSER))
    assert_refused(client.post("/webhook", data=raw("a_single_firing"), content_type="application/json",
                               headers=BROWSER))
    assert not client.get(f"/api/v1/alerts/{alert_id}").get_json()["acked"]


@pytest.mark.parametrize("host", ["localhost", "localhost:9095", "LOCALHOST", "localhost.", "127.0.0.1",
                                  "127.0.0.1:9095", "127.1.2.3:80", "[::1]", "[::1]:9095"])
def test_loopback_hosts_are_served(client, host):
    assert client.get("/api/v1/alerts", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", [EVIL, f"{EVIL}:9095", "127.0.0.1.nip.io", "localhost.attacker.example",
                                  "10.0.0.5:9095", "[::2]", "0.0.0.0", "[::1", "localhost:x", "localhost:9095:1"])
def test_other_hosts_are_refused(client, host):
    assert_refused(client.get("/api/v1/alerts", headers={"Host": host}))


def test_a_host_no_dns_name_can_be_is_refused(client):
    resp = client.get("/api/v1/alerts", headers={"Host": "x" * 300})
    assert resp.status_code in (400, 421)  # werkzeug refuses a label over 63 characters itself


def test_probes_answer_whatever_the_host(client):
    """Kubernetes probes send Host = the pod's IP; /-/healthy and /-/ready say nothing stored."""
    for path in ("/-/healthy", "/-/ready"):
        assert client.get(path, headers={"Host": "10.1.2.3:9095"}).status_code == 200, path


def test_allowed_hosts_and_public_url_extend_the_loopback_rule(make_app):
    client = make_app(server={"allowed_hosts": ["alerts.internal", "10.0.0.5"],
                              "public_url": "https://alerts.example.org/"})
    for host in ("alerts.internal", "alerts.internal:9095", "ALERTS.INTERNAL", "10.0.0.5:9095",
                 "alerts.example.org", "localhost"):
        assert client.get("/api/v1/alerts", headers={"Host": host}).status_code == 200, host
    assert_refused(client.get("/api/v1/alerts", headers={"Host": EVIL}))


def test_with_tokens_the_host_is_free_unless_allowed_hosts_is_set(make_app):
    open_hosts = make_app(auth={"tokens": token_settings()})
    assert open_hosts.get("/api/v1/alerts", headers={"Host": EVIL, **bearer(TOKENS["read"])}).status_code == 200
    listed = make_app(auth={"tokens": token_settings()}, server={"allowed_hosts": ["alerts.internal"]})
    assert_refused(listed.get("/api/v1/alerts", headers={"Host": EVIL, **bearer(TOKENS["read"])}))
    listed_host = {"Host": "alerts.internal", **bearer(TOKENS["read"])}
    assert listed.get("/api/v1/alerts", headers=listed_host).status_code == 200


@pytest.mark.parametrize("entry", ["https://alerts.example.org", "alerts.example.org:9095", "a b", "", "*",
                                   "x" * 254, "under_score..example"])
def test_a_bad_allowed_hosts_entry_is_named_with_its_fix(tmp_path, entry):
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump({"server": {"allowed_hosts": ["ok.example", entry]}}))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    text = str(info.value)
    assert str(path) in text and "server.allowed_hosts[1]" in text and "fix" in text, text
