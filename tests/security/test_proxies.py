"""Behind a TLS-terminating reverse proxy: X-Forwarded-For and X-Forwarded-Proto are believed from the proxies named
by `serve --forwarded-allow-ips` (gunicorn's forwarded_allow_ips, and server.TrustedProxyFix for the client
address), and ignored from anyone else, who could write them to pass for https or for another address."""

from __future__ import annotations

import pytest
import requests
import yaml
from click.testing import CliRunner
from flask import Flask, jsonify, request

from receiver.cli import main
from receiver.gunicorn_conf import settings
from receiver.server import TrustedProxyFix, parse_proxies

from ..support.process import ReceiverProcess
from .conftest import token_settings


def echo_app(allow_ips: str):
    app = Flask("echo")

    @app.get("/")
    def echo():
        return jsonify(client=request.remote_addr, scheme=request.scheme, secure=request.is_secure)

    app.wsgi_app = TrustedProxyFix(app.wsgi_app, allow_ips)
    return app.test_client()


FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


@pytest.mark.parametrize("allow_ips, peer, forwarded, want", [
    ("127.0.0.1,::1", "127.0.0.1", FORWARDED, ("203.0.113.7", "https")),
    ("127.0.0.1,::1", "::1", FORWARDED, ("203.0.113.7", "https")),
    ("10.0.0.0/8", "10.20.30.40", FORWARDED, ("203.0.113.7", "https")),
    ("*", "198.51.100.9", FORWARDED, ("203.0.113.7", "https")),
    ("127.0.0.1,::1", "198.51.100.9", FORWARDED, ("198.51.100.9", "http")),  # not a proxy: headers ignored
    ("10.0.0.0/8", "11.0.0.1", FORWARDED, ("11.0.0.1", "http")),
    ("127.0.0.1", "127.0.0.1", {}, ("127.0.0.1", "http")),  # a trusted proxy that adds nothing
    # A client writes its own X-Forwarded-For; the proxy appends the address it saw: only that last one counts.
    ("127.0.0.1", "127.0.0.1", {"X-Forwarded-For": "10.0.0.1, 203.0.113.7", "X-Forwarded-Proto": "https"},
     ("203.0.113.7", "https")),
], ids=["loopback-v4", "loopback-v6", "network", "star", "untrusted-peer", "outside-network", "no-headers",
        "spoofed-first-hop"])
def test_forwarded_headers_are_believed_only_from_trusted_proxies(allow_ips, peer, forwarded, want):
    got = echo_app(allow_ips).get("/", headers=forwarded, environ_base={"REMOTE_ADDR": peer}).get_json()
    assert (got["client"], got["scheme"]) == want
    assert got["secure"] is (want[1] == "https")


def test_bad_proxy_lists_are_named():
    assert parse_proxies(" 10.0.0.1 , 10.1.0.0/16,::1") is not None
    assert parse_proxies("*") is None
    with pytest.raises(ValueError, match="'10.0.0.300'"):
        parse_proxies("10.0.0.1,10.0.0.300")
    result = CliRunner().invoke(main, ["serve", "--forwarded-allow-ips", "proxy.example.org"])
    assert result.exit_code == 2
    assert "--forwarded-allow-ips" in result.output and "'proxy.example.org' is not an IP address" in result.output


def test_the_option_reaches_gunicorn(monkeypatch):
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    assert settings("127.0.0.1", 9095)["forwarded_allow_ips"] == "127.0.0.1,::1"
    assert settings("127.0.0.1", 9095, forwarded_allow_ips="10.0.0.5")["forwarded_allow_ips"] == "10.0.0.5"


@pytest.mark.e2e
@pytest.mark.parametrize("allow_ips, secure", [("127.0.0.1,::1", True), ("10.9.9.9", False)],
                         ids=["loopback-proxy-trusted", "loopback-not-a-proxy"])
def test_a_real_server_takes_the_scheme_from_trusted_proxies_only(tmp_path, allow_ips, secure):
    """The dashboard's session cookie is Secure exactly when the request reached the proxy over https."""
    config = tmp_path / "receiver.yml"
    config.write_text(yaml.safe_dump({"database": {"url": f"sqlite:///{tmp_path}/receiver.db"},
                                      "auth": {"tokens": token_settings()}}))
    receiver = ReceiverProcess(config, workers=1)
    try:
        receiver.start("--no-engine", "--forwarded-allow-ips", allow_ips).wait_ready()
        resp = requests.get(receiver.url + "/login", headers=FORWARDED, timeout=10, allow_redirects=False)
        cookie = resp.headers.get("Set-Cookie", "")
        assert resp.status_code == 200 and cookie, (resp.status_code, dict(resp.headers))
        assert ("; Secure" in cookie) is secure, cookie
    finally:
        receiver.stop()
