"""Issue #15, finding 7: no credential reaches a delivery error (last_error: the API, the dashboard's /delivery
page, the logs), whichever form a provider echoes it in: whole, percent-encoded, base64 (SMTP AUTH PLAIN's
\\0user\\0password, HTTP Basic's user:password, the password alone), and however long the answer is (a secret
straddling the cut of a long body must not leak its first part)."""

from __future__ import annotations

import base64
import logging
import re
import urllib.parse

import pytest
import requests
import responses
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.channels.base import DeliveryError
from receiver.channels.registry import build_channels
from receiver.engine.delivery import Dispatcher
from receiver.logs import JsonFormatter, redact
from receiver.render import Renderer

from ..channels.conftest import (GCHAT_KEY, GCHAT_TOKEN, HOOK_AUTH, HOOK_SECRET, MATTERMOST_URL, PD_KEY, SLACK_URL,
                                 TEAMS_URL, TWILIO_SID, TWILIO_TOKEN)
from ..channels.conftest import http, make_channel, mock_http, renderer, template_errors  # noqa: F401 (fixtures)
from ..channels.test_email import Collector, free_port
from ..dashboard.support import sign_in
from ..support.fixtures import raw
from ..support.messages import make_message
from .conftest import TOKENS, bearer, token_settings

USER = "alerts@example.org"
PASSWORD = "leak-smtp-Passw0rd!"
CUT = 200  # how much of a provider's answer an error quotes


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def leaks(text: str, secret: str, window: int = 10) -> list[str]:
    """Every `window`-character piece of `secret` found in `text`: a secret cut short still leaks."""
    window = min(window, len(secret))
    return sorted({secret[i:i + window] for i in range(len(secret) - window + 1) if secret[i:i + window] in text})


# --- the helper --------------------------------------------------------------------------------------------

FORMS = {
    "plain": PASSWORD,
    "percent-encoded": urllib.parse.quote(PASSWORD, safe=""),
    "base64": b64(PASSWORD),
    "base64 unpadded": b64(PASSWORD).rstrip("="),
    "base64 AUTH PLAIN": b64(f"\0{USER}\0{PASSWORD}"),
    "base64 AUTH PLAIN with authzid": b64(f"{USER}\0{USER}\0{PASSWORD}"),
    "base64 user:password": b64(f"{USER}:{PASSWORD}"),
    "urlsafe base64": base64.urlsafe_b64encode(f"x{PASSWORD}?>".encode()).decode(),
    "base64 after a prefix": "Basic%20" + b64(f"{USER}:{PASSWORD}"),
}


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_redact_hides_every_form_of_a_secret(form):
    text = f"535 5.7.8 AUTH PLAIN {form} rejected (see https://oncall:pw@mail.example.org/)"
    out = redact(text, [PASSWORD])
    assert not leaks(out, form) and not leaks(out, PASSWORD), out
    assert out.startswith("535 5.7.8 AUTH PLAIN ") and out.endswith(" rejected (see https://***@mail.example.org/)")


def test_redact_leaves_other_text_alone():
    text = "HTTP 400: invalid_payload (channel_not_found) QUJDREVGR0g= 12345678"
    assert redact(text, [PASSWORD, "abc"]) == text  # a secret under 4 characters is no secret


# --- SMTP: a real server that quotes the credentials in its 535 ----------------------------------------------

ECHOES = {  # what a server's 535 reply quotes
    "AUTH PLAIN argument": lambda u, p: b64(f"\0{u}\0{p}"),
    "AUTH LOGIN password": lambda u, p: b64(p),
    "user:password": lambda u, p: b64(f"{u}:{p}"),
    "the password": lambda u, p: p,
}


@pytest.fixture
def echoing_smtp():
    """An SMTP server refusing every login with a 535 that quotes the credentials as `echo` encodes them."""
    started = []

    def start(echo, mechanism):
        def authenticator(server, session, envelope, mechanism, auth_data):
            assert isinstance(auth_data, LoginPassword)
            quoted = echo(auth_data.login.decode(), auth_data.password.decode())
            return AuthResult(success=False, handled=False, message=f"535 5.7.8 {mechanism} {quoted} rejected")

        port = free_port()
        controller = Controller(Collector(), hostname="127.0.0.1", port=port, authenticator=authenticator,
                                auth_require_tls=False, auth_required=True,
                                auth_exclude_mechanism=[m for m in ("PLAIN", "LOGIN") if m != mechanism])
        controller.start()
        started.append(controller)
        return port

    yield start
    for controller in started:
        controller.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("echo", ECHOES.values(), ids=ECHOES.keys())
def test_smtp_replies_are_redacted(echoing_smtp, make_channel, echo, mechanism, caplog):
    caplog.set_level(logging.DEBUG)
    port = echoing_smtp(echo, mechanism)
    channel = make_channel("email", smtp_host="127.0.0.1", smtp_port=port, starttls=False, username=USER,
                           password=PASSWORD, to=["oncall@example.org"], timeout="5s", **{"from": USER})
    with pytest.raises(DeliveryError) as info:
        channel.send(make_message())
    reason = info.value.reason
    assert "535" in reason and "********" in reason and info.value.retryable is False, reason
    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records if r.name.startswith("receiver"))
    for text in (reason, logged):
        assert not leaks(text, echo(USER, PASSWORD)) and not leaks(text, PASSWORD), text


class RefusingLead(Collector):
    """Accepts oncall@, refuses lead@ with a reply quoting the AUTH PLAIN line."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("lead@"):
            return f"550 5.7.1 {b64(chr(0) + USER + chr(0) + PASSWORD)} may not write to {address}"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("to", [["oncall@example.org", "lead@example.org"], ["lead@example.org"]],
                         ids=["partly refused: logged", "all refused: the error"])
def test_refused_recipient_replies_are_redacted(make_channel, to, caplog):
    caplog.set_level(logging.DEBUG)
    port = free_port()
    controller = Controller(RefusingLead(), hostname="127.0.0.1", port=port, auth_require_tls=False,
                            authenticator=lambda *args: AuthResult(success=True))
    controller.start()
    try:
        channel = make_channel("email", smtp_host="127.0.0.1", smtp_port=port, starttls=False, username=USER,
                               password=PASSWORD, to=to, timeout="5s", **{"from": USER})
        try:
            channel.send(make_message())
            reason = ""
        except DeliveryError as exc:
            reason = exc.reason
    finally:
        controller.stop()
    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records if r.name.startswith("receiver"))
    assert "550" in (reason if len(to) == 1 else logged)
    for text in (reason, logged):
        assert not leaks(text, b64(f"\0{USER}\0{PASSWORD}")), text


# --- HTTP: a secret straddling the cut of a long answer -------------------------------------------------------

STRADDLING = [  # (channel, the secret its provider echoes)
    ("slack", SLACK_URL),
    ("slack", SLACK_URL.rsplit("/", 1)[1]),
    ("msteams", TEAMS_URL),
    ("pagerduty", PD_KEY),
    ("twilio_sms", TWILIO_TOKEN),
    ("twilio_sms", b64(f"{TWILIO_SID}:{TWILIO_TOKEN}")),
    ("webhook", HOOK_SECRET),
    ("webhook", HOOK_AUTH.split()[1]),  # the bearer token without its scheme
    ("mattermost", MATTERMOST_URL),
    ("mattermost", MATTERMOST_URL.rsplit("/", 1)[1]),
    ("google_chat", GCHAT_KEY),
    ("google_chat", GCHAT_TOKEN),
]


@pytest.mark.parametrize("kind,secret", STRADDLING, ids=[f"{k}-{s[:24]}" for k, s in STRADDLING])
@pytest.mark.parametrize("at", ["straddling the cut", "inside the cut"])
def test_http_error_bodies_are_redacted_before_they_are_cut(make_channel, mock_http, kind, secret, at):
    # Straddling: the first 200 characters end with all of the secret but its last character.
    filler = "x" * (CUT - len(secret) + 1 if at == "straddling the cut" else 20)
    mock_http.add(responses.POST, re.compile(r"https://.*"), status=400, body=f"{filler}{secret} was refused")
    with pytest.raises(DeliveryError) as info:
        make_channel(kind).send(make_message())
    assert "HTTP 400" in info.value.reason and "xxxxxxxxxx" in info.value.reason, info.value.reason
    assert not leaks(info.value.reason, secret), info.value.reason


# --- through the engine: last_error in the API and on /delivery, and the logs --------------------------------


def test_last_error_api_dashboard_and_logs_hold_no_secret(make_config, clock, caplog):
    caplog.set_level(logging.DEBUG)
    config = make_config(auth={"tokens": token_settings()},
                         channels={"slack": {"type": "slack", "webhook_url": SLACK_URL}},
                         routes=[{"levels": {"L1": ["slack"], "L2": ["slack"], "L3": ["slack"]}}])
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    svc = app.extensions["alert_receiver"]
    client = app.test_client()
    try:
        assert client.post("/webhook", data=raw("g_routing_critical"), content_type="application/json",
                           headers=bearer(TOKENS["webhook"])).status_code == 200
        body = "x" * (CUT - len(SLACK_URL) + 1) + SLACK_URL
        with requests.Session() as http, responses.RequestsMock() as mock:
            mock.add(responses.POST, SLACK_URL, status=400, body=body)
            dispatcher = Dispatcher(svc.writes, config, build_channels(config.channels, renderer=Renderer(), http=http),
                                    clock=clock, worker="redaction-test", rng=lambda: 0.5)
            while dispatcher.run_once().handled:
                pass
        read = bearer(TOKENS["read"])
        listed = client.get("/api/v1/notifications", headers=read).get_json()["notifications"]
        errors = [n["last_error"] for n in listed if n["last_error"]]
        assert errors and all("HTTP 400" in e for e in errors), listed
        sign_in(client, TOKENS["read"])
        page = client.get("/delivery")
        assert page.status_code == 200 and "HTTP 400" in page.get_data(as_text=True)
        texts = {"api": str(listed), "dashboard": page.get_data(as_text=True),
                 "logs": "\n".join(JsonFormatter().format(r) for r in caplog.records)}
    finally:
        svc.db.dispose()
    for where, text in texts.items():
        assert not leaks(text, SLACK_URL.split("/services/")[1]), where
