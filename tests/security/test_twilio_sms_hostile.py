"""Hostile requests at POST /integrations/twilio/sms: every one is refused or answered without acting, never a
5xx, and the auth token shows in no answer and no log line.

- a body over 16 KiB is a 413 (whatever Content-Length says), before anything is read as a form;
- a body that is not a form (JSON, bytes that are not UTF-8, too many fields) cannot carry Twilio's signature: 401;
- signed but not as Twilio sends (a huge Body or From, a parameter given twice): 400, nothing changes;
- what the sender wrote is never echoed unescaped: every answer is well-formed TwiML;
- a code above the notifications id column's range is the help, not a database error.
"""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

from receiver.web.twilio_sms_webhook import signature

from ..conftest import table_counts
from ..web.test_twilio_sms_webhook import (ONCALL_TOKEN, PATH, TO, TOKEN, URL, acked_by, make_app, page, reply,
                                           sign)
from .test_secret_leaks import log_text

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def hostile(make_config, clock):
    app = make_app(make_config, clock)
    yield app
    app.extensions["alert_receiver"].db.dispose()


def send(client, body: bytes, sig: str, content_type: str = FORM):
    return client.post(PATH, data=body, content_type=content_type, headers={"X-Twilio-Signature": sig})


def signed_form(params: list[tuple[str, str]]) -> tuple[bytes, str]:
    return urlencode(params).encode(), sign(dict(params))


def unchanged(app, client, alerts, before) -> None:
    assert table_counts(app.extensions["alert_receiver"].db) == before
    assert acked_by(client, alerts) == [None] * 5


def test_an_oversized_body_is_413(hostile):
    client = hostile.test_client()
    firing, alerts = page(client)
    before = table_counts(hostile.extensions["alert_receiver"].db)
    params = reply(f"ACK {firing['sms']}") | {"Padding": "x" * 20_000}
    body, sig = signed_form(list(params.items()))
    resp = send(client, body, sig)
    assert resp.status_code == 413 and resp.get_json()["error"] == "body_too_large"
    unchanged(hostile, client, alerts, before)


@pytest.mark.parametrize("case", ["huge-body", "huge-from", "huge-sid", "twice"])
def test_signed_parameters_twilio_never_sends_are_400(hostile, case):
    client = hostile.test_client()
    firing, alerts = page(client)
    before = table_counts(hostile.extensions["alert_receiver"].db)
    params = list(reply(f"ACK {firing['sms']}").items())
    if case == "huge-body":
        params = [(k, f"ACK {firing['sms']}" + " " * 5000 if k == "Body" else v) for k, v in params]
    elif case == "huge-from":
        params = [(k, TO[0] + "0" * 5000 if k == "From" else v) for k, v in params]
    elif case == "huge-sid":
        params = [(k, "SM" + "a" * 5000 if k == "MessageSid" else v) for k, v in params]
    else:
        params.append(("Body", f"ACK {firing['sms']}"))
    body, _ = signed_form(params)
    # Twilio's rule for a repeated name (its helper libraries sort the values); the code's own function here,
    # checked against Twilio's documented example in tests/web.
    sig = signature(TOKEN.encode(), URL, params)
    resp = send(client, body, sig)
    assert resp.status_code == 400 and resp.get_json()["error"] == "malformed_request", resp.get_data()
    unchanged(hostile, client, alerts, before)


@pytest.mark.parametrize("case", ["json", "not-utf8", "too-many-fields", "no-content-type", "huge-header"])
def test_bodies_that_are_not_twilio_forms_are_401(hostile, case):
    client = hostile.test_client()
    firing, alerts = page(client)
    before = table_counts(hostile.extensions["alert_receiver"].db)
    params = reply(f"ACK {firing['sms']}")
    sig = sign(params)
    if case == "json":
        resp = send(client, json.dumps(params).encode(), sig, "application/json")
    elif case == "not-utf8":
        resp = send(client, urlencode(params).encode() + b"&X=\xff\xfe", sign(params | {"X": "\ufffd\ufffd"}))
    elif case == "too-many-fields":
        many = params | {f"F{i}": "" for i in range(200)}
        resp = send(client, urlencode(many).encode(), sign(many))
    elif case == "no-content-type":
        resp = client.post(PATH, data=urlencode(params).encode(), headers={"X-Twilio-Signature": sig})
    else:
        resp = send(client, urlencode(params).encode(), "A" * 8000)
    assert resp.status_code == 401, (resp.status_code, resp.get_data()[:300])
    unchanged(hostile, client, alerts, before)


@pytest.mark.parametrize("sender", ['+1<Message>"&amp;</Response>', "+1555]]>"])
def test_answers_are_well_formed_twiml_whatever_was_sent(hostile, sender):
    client = hostile.test_client()
    firing, alerts = page(client)
    params = reply(f"ACK {firing['sms']}", sender=sender)
    resp = send(client, urlencode(params).encode(), sign(params))
    assert resp.status_code == 200 and resp.mimetype == "text/xml"
    root = ET.fromstring(resp.get_data())
    assert root.tag == "Response" and [c.tag for c in root] == ["Message"]
    assert sender in root[0].text  # said back as text, never as markup
    assert acked_by(client, alerts) == [None] * 5


@pytest.mark.parametrize("code", ["9223372036854775807", "9223372036854775808", "9999999999999999999", "0"])
def test_codes_at_and_past_the_id_range_are_answered_not_500(hostile, code):
    client = hostile.test_client()
    firing, alerts = page(client)
    params = reply(f"ACK {code}")
    resp = send(client, urlencode(params).encode(), sign(params))
    assert resp.status_code == 200 and b"<Message>" in resp.get_data()
    assert acked_by(client, alerts) == [None] * 5


def test_no_auth_token_in_answers_or_logs(hostile, caplog):
    caplog.set_level(logging.DEBUG)
    client = hostile.test_client()
    firing, alerts = page(client)
    answers = []
    cases = [
        reply(f"ACK {firing['sms']}"),  # acts
        reply(f"ACK {firing['sms']}", sender="+15559999999"),  # refused
        reply("what?"),  # help
        reply(f"ACK {firing['sms-oncall']}", sender=TO[0]),  # another account's message
    ]
    for params in cases:
        answers.append(send(client, urlencode(params).encode(), sign(params)))
        answers.append(send(client, urlencode(params).encode(), sign(params, "wrong-token")))
    answers.append(send(client, b"x" * 20_000, "sig"))
    answers.append(send(client, b"{}", "sig", "application/json"))
    text = "\n".join(f"{r.status_code} {dict(r.headers)} {r.get_data(as_text=True)}" for r in answers)
    text += "\n" + log_text(caplog)
    assert "Acknowledged 5 alerts" in text  # the requests did reach the view
    for token in (TOKEN, ONCALL_TOKEN):
        assert token not in text
    # Nor the signature a request should have carried (it would let a caller forge that request).
    for params in cases:
        assert sign(params) not in text
