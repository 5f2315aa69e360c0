"""POST /integrations/twilio/sms: a signed SMS reply "ACK <id>" acknowledges the firing alerts of that SMS.

Signatures are computed here with hmac + base64 as Twilio documents them
(https://www.twilio.com/docs/usage/security#validating-requests), independently of the code under test, over
server.public_url + the path: the test client's own URL (http://localhost/...) is not what is signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import re
from urllib.parse import parse_qs

import pytest
import requests
import responses
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.channels.registry import build_channels
from receiver.engine.delivery import Dispatcher
from receiver.render import Renderer
from receiver.store.write_port import DirectWrites
from receiver.web.twilio_sms_webhook import signature

from ..support.fixtures import raw

TOKEN = "twilio-auth-token-for-tests"
ONCALL_TOKEN = "another-twilio-account-token"
PUBLIC_URL = "https://alerts.example.org"
URL = f"{PUBLIC_URL}/integrations/twilio/sms"
OURS = "+15550000000"
TO = ["+15551111111", "+15552222222"]
ALICE = "+15553333333"
BOB = TO[1]  # a person whose phone is also one of the channel's `to` numbers
STRANGER = "+15559999999"
PATH = "/integrations/twilio/sms"


def make_app(make_config, clock, **server):
    config = make_config(
        channels={"sms": {"type": "twilio_sms", "account_sid": "AC" + "1" * 32, "auth_token": TOKEN, "from": OURS,
                          "to": TO},
                  "sms-oncall": {"type": "twilio_sms", "account_sid": "AC" + "2" * 32, "auth_token": ONCALL_TOKEN,
                                 "from": OURS},
                  "chat": {"type": "log"}},
        people={"alice": {"phone": ALICE}, "bob": {"phone": BOB}},
        routes=[{"levels": {"L1": ["sms", {"person": "alice", "via": ["sms-oncall"]}], "L2": ["chat"],
                            "L3": ["chat"]}}],
        server={"public_url": PUBLIC_URL + "/", **server})
    return create_app(config, clock=clock, registry=CollectorRegistry())


@pytest.fixture
def sms_client(make_config, clock):
    app = make_app(make_config, clock)
    yield app.test_client()
    app.extensions["alert_receiver"].db.dispose()


def sign(params: dict[str, str], token: str = TOKEN, url: str = URL) -> str:
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


_SIDS = itertools.count(1)


def reply(text: str, sender: str = TO[0], sid: str | None = None) -> dict[str, str]:
    """Twilio's incoming-message parameters (https://www.twilio.com/docs/messaging/guides/webhook-request)."""
    return {"ToCountry": "US", "SmsMessageSid": sid or f"SM{next(_SIDS):032x}", "NumMedia": "0",
            "SmsSid": sid or "", "SmsStatus": "received", "Body": text, "To": OURS, "NumSegments": "1",
            "MessageSid": sid or f"SM{next(_SIDS):032x}", "AccountSid": "AC" + "1" * 32, "From": sender,
            "ApiVersion": "2010-04-01"}


def post(client, params: dict[str, str], sig: str | None = None):
    headers = {"X-Twilio-Signature": sign(params) if sig is None else sig}
    return client.post(PATH, data=params, headers=headers)


def page(client) -> tuple[dict[str, int], list[int]]:
    """Five firing L1 alerts in one group: channel → the id of its firing message, and the alert ids."""
    assert client.post("/webhook", data=raw("b_group_5_firing"), content_type="application/json").status_code == 200
    messages = client.get("/api/v1/notifications").get_json()["notifications"]
    firing = {m["channel"]: m["id"] for m in messages if m["kind"] == "firing"}
    alerts = sorted(a["id"] for a in client.get("/api/v1/alerts").get_json()["alerts"])
    assert set(firing) >= {"sms", "sms-oncall"} and len(alerts) == 5
    return firing, alerts


def acked_by(client, alert_ids) -> list[str | None]:
    return [client.get(f"/api/v1/alerts/{i}").get_json()["acked_by"] for i in alert_ids]


def twiml(resp) -> str:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "text/xml"
    text = resp.get_data(as_text=True)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?><Response>') and text.endswith("</Response>")
    return text


def test_the_signature_matches_twilios_documented_example():
    # The example of https://www.twilio.com/docs/usage/security#validating-requests.
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234", "From": "+14158675309",
              "To": "+18005551212"}
    assert signature(b"12345", "https://mycompany.com/myapp.php?foo=1&bar=2", list(params.items())) \
        == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_ack_from_a_number_the_sms_went_to_acks_every_firing_alert_it_carried(sms_client):
    firing, alerts = page(sms_client)
    resp = post(sms_client, reply(f"ACK {firing['sms']}", sender=TO[0]))
    assert twiml(resp).endswith(f"<Message>Acknowledged 5 alerts (#{firing['sms']})</Message></Response>")
    assert acked_by(sms_client, alerts) == [f"sms:{TO[0]}"] * 5
    timeline = sms_client.get(f"/api/v1/alerts/{alerts[0]}").get_json()["timeline"]
    [acked] = [e for e in timeline if e["kind"] == "acked"]
    assert acked["actor"] == f"sms:{TO[0]}" and acked["comment"] == f"SMS reply to #{firing['sms']}"
    # Nothing left to acknowledge: said so, nothing changes.
    again = post(sms_client, reply(f"ack #{firing['sms']}", sender=TO[0]))
    assert "Nothing to acknowledge" in twiml(again)


@pytest.mark.parametrize("text", ["ACK {id}", "ack {id}", "  Ack #{id}  ", "ACK#{id}", "ack\n{id}"])
def test_the_code_is_read_leniently(sms_client, text):
    firing, alerts = page(sms_client)
    assert "Acknowledged 5 alerts" in twiml(post(sms_client, reply(text.format(id=firing["sms"]))))


def test_a_persons_phone_acts_as_that_person(sms_client):
    firing, alerts = page(sms_client)
    # bob's phone is one of the channel's `to` numbers.
    assert "Acknowledged 5 alerts" in twiml(post(sms_client, reply(f"ACK {firing['sms']}", sender=BOB)))
    assert acked_by(sms_client, alerts) == ["sms:bob"] * 5


def test_the_person_a_message_paged_may_ack_it(sms_client):
    firing, alerts = page(sms_client)
    params = reply(f"ACK {firing['sms-oncall']}", sender=ALICE)
    # Signed by the account of the channel that sent it.
    assert "Acknowledged 5 alerts" in twiml(post(sms_client, params, sign(params, ONCALL_TOKEN)))
    assert acked_by(sms_client, alerts) == ["sms:alice"] * 5


@pytest.mark.parametrize("sender,channel,token", [
    (STRANGER, "sms", TOKEN),  # nobody we sent it to
    (ALICE, "sms", TOKEN),  # a known person, but this message went to the `to` numbers only
    (TO[0], "sms-oncall", ONCALL_TOKEN),  # that message paged alice only
    (ALICE, "sms-oncall", TOKEN),  # alice's message, signed by another account's token
], ids=["stranger", "person-not-sent-to", "to-number-not-sent-to", "other-account"])
def test_a_number_the_message_was_not_sent_to_is_refused(sms_client, sender, channel, token):
    firing, alerts = page(sms_client)
    params = reply(f"ACK {firing[channel]}", sender=sender)
    text = twiml(post(sms_client, params, sign(params, token)))
    assert "Acknowledged" not in text and "<Message>" in text
    assert acked_by(sms_client, alerts) == [None] * 5


@pytest.mark.parametrize("text", ["hello", "ACK", "ACK forty-two", "STOP", "", "ACK 99999999", "ACK 1 2",
                                  "ACK 99999999999999999999"])
def test_anything_else_is_answered_with_the_syntax(sms_client, text):
    firing, alerts = page(sms_client)
    answer = twiml(post(sms_client, reply(text)))
    assert "Reply ACK &lt;number&gt;" in answer  # the help, XML-escaped
    assert acked_by(sms_client, alerts) == [None] * 5


def test_a_retried_webhook_acts_once(sms_client):
    firing, alerts = page(sms_client)
    params = reply(f"ACK {firing['sms']}", sid="SM" + "a" * 32)
    assert "Acknowledged 5 alerts" in twiml(post(sms_client, params))
    sms_client.post(f"/api/v1/alerts/{alerts[0]}/unack", json={"actor": "someone"})
    again = twiml(post(sms_client, params))  # Twilio retrying the same MessageSid: not acted on again
    assert "Already done" in again
    assert acked_by(sms_client, alerts) == [None] + [f"sms:{TO[0]}"] * 4


def test_resolve(sms_client):
    firing, alerts = page(sms_client)
    assert "Resolved 5 alerts" in twiml(post(sms_client, reply(f"RESOLVE {firing['sms']}")))
    assert {sms_client.get(f"/api/v1/alerts/{i}").get_json()["status"] for i in alerts} == {"resolved"}


@pytest.mark.parametrize("how", ["wrong-token", "missing", "garbage", "changed-body", "changed-sender",
                                 "added-parameter", "client-url"])
def test_bad_signatures_are_401_and_change_nothing(sms_client, how):
    firing, alerts = page(sms_client)
    params = reply(f"ACK {firing['sms']}")
    sig = {"wrong-token": sign(params, "not-the-token"), "missing": "", "garbage": "AAAA",
           "client-url": sign(params, url=f"http://localhost{PATH}")}.get(how, sign(params))
    # A replay of a signed request with a parameter changed after signing.
    if how == "changed-body":
        params["Body"] = f"RESOLVE {firing['sms']}"
    elif how == "changed-sender":
        params["From"] = STRANGER
    elif how == "added-parameter":
        params["Extra"] = "1"
    headers = {"X-Twilio-Signature": sig} if how != "missing" else {}
    resp = sms_client.post(PATH, data=params, headers=headers)
    assert resp.status_code == 401 and resp.get_json()["error"] == "bad_signature"
    assert acked_by(sms_client, alerts) == [None] * 5
    assert {sms_client.get(f"/api/v1/alerts/{i}").get_json()["status"] for i in alerts} == {"firing"}


def test_the_endpoint_is_off_without_public_url_or_a_twilio_channel(make_config, clock, client):
    config = make_config(channels={"sms": {"type": "twilio_sms", "account_sid": "AC1", "auth_token": TOKEN,
                                           "from": OURS, "to": TO}},
                         routes=[{"levels": {"L1": ["sms"], "L2": ["sms"], "L3": ["sms"]}}])
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    try:
        params = reply("ACK 1")
        resp = app.test_client().post(PATH, data=params, headers={"X-Twilio-Signature": sign(params)})
        assert resp.status_code == 404 and "server.public_url" in resp.get_json()["fix"]
    finally:
        app.extensions["alert_receiver"].db.dispose()
    resp = client.post(PATH, data=reply("ACK 1"))  # no twilio_sms channel at all
    assert resp.status_code == 404 and resp.get_json()["error"] == "not_configured"


def test_end_to_end_the_code_in_the_sms_sent_acks_what_it_carried(make_config, clock):
    """The real channel sends through the dispatcher (Twilio's API mocked); the code read from the SMS that went
    to alice (paged as a person: notifications.person is set at send) acknowledges, as sms:alice."""
    app = make_app(make_config, clock)
    svc = app.extensions["alert_receiver"]
    client = app.test_client()
    try:
        firing, alerts = page(client)
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock, requests.Session() as http:
            mock.add(responses.POST, re.compile(r"https://api\.twilio\.com/.*"), status=201, json={"sid": "SM1"})
            channels = build_channels(svc.config.channels, renderer=Renderer(), http=http)
            dispatcher = Dispatcher(DirectWrites(svc.db), svc.config, channels, clock=clock, worker="t",
                                    rng=lambda: 0.5)
            for _ in range(20):
                if not dispatcher.run_once().handled:
                    break
            sent = [parse_qs(c.request.body) for c in mock.calls]
        texts = {form["To"][0]: form["Body"][0] for form in sent}
        assert set(texts) == {*TO, ALICE}
        assert all(len(body) < 160 for body in texts.values())
        assert texts[TO[0]].endswith(f" Reply ACK {firing['sms']}")
        code = re.search(r"Reply ACK (\d+)$", texts[ALICE]).group(1)
        assert int(code) == firing["sms-oncall"]
        params = reply(f"ACK {code}", sender=ALICE)
        assert "Acknowledged 5 alerts" in twiml(post(client, params, sign(params, ONCALL_TOKEN)))
        assert acked_by(client, alerts) == ["sms:alice"] * 5
    finally:
        svc.db.dispose()
