"""Hostile requests to POST /integrations/slack/interactions: oversized, not a form, huge or deeply nested JSON,
buttons that are not ours, a signature that is hostile itself — each a clear 4xx or an `ignored` 200, never a 500,
never a change, and neither the signing secret nor the bot token in an answer or a log line. Signatures are
computed here with hmac (tests/web/test_slack_interactions.py `sign`)."""

from __future__ import annotations

import io
import json
import logging
import urllib.parse

import pytest
from hypothesis import given, strategies as st

from receiver.web import slack_interactions

from ..web.test_slack_interactions import (BOT_TOKEN, FORM, PATH, SECRET, alert, fire, form, now_ts, payload,  # noqa: F401
                                           sign, slack_client)
from .conftest import HYPOTHESIS


@pytest.fixture(autouse=True)
def _debug_logs(caplog):
    caplog.set_level(logging.DEBUG)


def assert_clean(resp, caplog) -> None:
    text = resp.get_data(as_text=True)
    assert resp.status_code < 500, text
    for secret in (SECRET, BOT_TOKEN):
        assert secret not in text and secret not in caplog.text


def untouched(client, alert_id: int) -> bool:
    shown = alert(client, alert_id)
    return shown["acked_at"] is None and shown["status"] == "firing" and shown["level"] == "L1"


def test_an_oversized_body_is_413_before_any_signature_work(slack_client, caplog):  # noqa: F811
    [a] = fire(slack_client)
    body = form(payload("ack", f"alert:{a['id']}")) + b"&pad=" + b"x" * (slack_interactions.MAX_BODY + 1)
    resp = slack_client.post(PATH, data=body, headers=sign(body, now_ts(slack_client)))  # even correctly signed
    assert resp.status_code == 413 and resp.get_json()["error"] == "body_too_large"
    assert_clean(resp, caplog)
    assert untouched(slack_client, a["id"])


def test_an_oversized_body_without_content_length_is_413(slack_client, caplog):  # noqa: F811
    body = b"payload=" + b"x" * (slack_interactions.MAX_BODY + 10)
    environ = {"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True}  # chunked: no Content-Length
    resp = slack_client.post(PATH, environ_overrides=environ, content_type=FORM,
                             headers=sign(body, now_ts(slack_client)))
    assert resp.status_code == 413
    assert_clean(resp, caplog)


@pytest.mark.parametrize("content_type,body", [
    ("application/json", json.dumps({"payload": {"type": "block_actions"}}).encode()),
    ("text/plain", b"ack alert:1"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=payload\r\n\r\n{}\r\n--x--"),
], ids=["json", "text", "multipart"])
def test_a_signed_body_that_is_not_a_form_is_415(slack_client, caplog, content_type, body):  # noqa: F811
    [a] = fire(slack_client)
    headers = {**sign(body, now_ts(slack_client)), "Content-Type": content_type}
    resp = slack_client.post(PATH, data=body, headers=headers)
    assert resp.status_code == 415 and resp.get_json()["error"] == "unsupported_media_type"
    assert_clean(resp, caplog)
    assert untouched(slack_client, a["id"])


@pytest.mark.parametrize("body", [
    b"\xff\xfe\x00payload",
    b"payload=%7B&payload=%7B%7D",  # two payloads
    b"nothing=here",
    b"payload=" + urllib.parse.quote("[" * 5000 + "]" * 5000).encode(),  # deep nesting
    b"payload=" + urllib.parse.quote(json.dumps({"type": "block_actions", "user": {"id": "U1"},
                                                 "actions": [{"action_id": "ack", "value": "x"}] * 50})).encode(),
    b"payload=" + urllib.parse.quote(json.dumps({"type": "t" * 1000, "user": {"id": "U1"}})).encode(),
    b"payload=" + urllib.parse.quote(json.dumps({"type": "block_actions", "user": {"id": "U1"},
                                                 "actions": [{"action_id": ["ack"], "value": "alert:1"}]})).encode(),
    b"a=1&" * 200 + b"payload=%7B%7D",  # too many fields
], ids=["not-utf8", "two-payloads", "no-payload", "deep", "many-actions", "long-type", "action-id-list",
        "many-fields"])
def test_malformed_signed_bodies_are_clear_400s(slack_client, caplog, body):  # noqa: F811
    [a] = fire(slack_client)
    resp = slack_client.post(PATH, data=body, headers=sign(body, now_ts(slack_client)))
    assert resp.status_code == 400 and resp.get_json()["error"] == "malformed_payload", resp.get_data()
    assert_clean(resp, caplog)
    assert untouched(slack_client, a["id"])


def test_a_huge_but_flat_payload_within_the_limit_is_read_and_ignored(slack_client, caplog):  # noqa: F811
    [a] = fire(slack_client)
    doc = payload("snooze", f"alert:{a['id']}")
    doc["view"] = {"blocks": [{"type": "section", "text": "x" * 100}] * 400}
    body = form(doc)
    assert len(body) < slack_interactions.MAX_BODY
    resp = slack_client.post(PATH, data=body, headers=sign(body, now_ts(slack_client)))
    assert resp.status_code == 200 and resp.get_json()["status"] == "ignored"
    assert_clean(resp, caplog)
    assert untouched(slack_client, a["id"])


@pytest.mark.parametrize("action_id,value", [
    ("unack", "alert:{id}"), ("ACK", "alert:{id}"), ("ack", "alert:{id} "), ("ack", "alert:-1"),
    ("ack", "alert:0{id}"), ("ack", "alert:" + "9" * 40), ("ack", "group:" + "A" * 16), ("ack", "fingerprint:x"),
    ("ack", ""), ("", "alert:{id}"), ("ack", "alert:{id}\nresolve"),
], ids=["unack", "upper", "space", "negative", "leading-zero", "huge-id", "upper-hex", "other-kind", "empty-value",
        "empty-action", "newline"])
def test_unknown_buttons_are_ignored_and_change_nothing(slack_client, caplog, action_id, value):  # noqa: F811
    [a] = fire(slack_client)
    body = form(payload(action_id, value.format(id=a["id"])))
    resp = slack_client.post(PATH, data=body, headers=sign(body, now_ts(slack_client)))
    assert resp.status_code == 200 and resp.get_json()["status"] == "ignored", resp.get_json()
    assert_clean(resp, caplog)
    assert untouched(slack_client, a["id"])


@pytest.mark.parametrize("headers", [
    {"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": "99999999999999999999999"},
    {"X-Slack-Signature": "v0=é€" * 50, "X-Slack-Request-Timestamp": "1"},
    {"X-Slack-Signature": "", "X-Slack-Request-Timestamp": "-5"},
    {"X-Slack-Signature": "v0=" + "f" * 5000, "X-Slack-Request-Timestamp": "１２３"},  # full-width digits
], ids=["huge-timestamp", "non-ascii", "negative", "long-signature"])
def test_hostile_signature_headers_are_401(slack_client, caplog, headers):  # noqa: F811
    [a] = fire(slack_client)
    body = form(payload("ack", f"alert:{a['id']}"))
    resp = slack_client.post(PATH, data=body, headers={"Content-Type": FORM, **headers})
    assert resp.status_code == 401
    assert_clean(resp, caplog)
    assert untouched(slack_client, a["id"])


def test_a_signed_but_huge_timestamp_is_401_not_500(slack_client, caplog):  # noqa: F811
    body = form(payload("ack", "alert:1"))
    resp = slack_client.post(PATH, data=body, headers=sign(body, "9" * 12))
    assert resp.status_code == 401
    assert_clean(resp, caplog)


@HYPOTHESIS
@given(body=st.binary(max_size=2000))
def test_any_signed_bytes_are_answered_below_500(slack_client, body):  # noqa: F811
    resp = slack_client.post(PATH, data=body, headers=sign(body, now_ts(slack_client)))
    assert resp.status_code in (200, 400), resp.get_data()
    assert SECRET not in resp.get_data(as_text=True)


def test_signatures_are_compared_with_compare_digest_against_every_secret(monkeypatch):
    calls = []
    real = slack_interactions.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(slack_interactions.hmac, "compare_digest", spy)
    body = b"payload=%7B%7D"
    good = sign(body, 1700000000)
    assert slack_interactions.signature_valid(body, "1700000000", good["X-Slack-Signature"],
                                              [SECRET.encode(), b"another-secret"])
    assert len(calls) == 2  # every secret, though the first matched
    assert not slack_interactions.signature_valid(body, "1700000001", good["X-Slack-Signature"], [SECRET.encode()])


def test_config_errors_and_check_config_show_no_slack_secret(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from receiver.cli import main
    from receiver.config import ConfigError, load_config

    bad_token, signing = "leak-not-a-bot-token-2718", "leak-slack-signing-secret-3141"
    path = tmp_path / "receiver.yml"
    text = ("database: {url: 'sqlite:///%s/r.db'}\n"
            "channels: {team: {type: slack_app, bot_token: '${BOT}', signing_secret: '${SIGNING}', channel: C0123ABC}}\n"
            "routes: [{levels: {L1: [team], L2: [team], L3: [team]}}]\n" % tmp_path)
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"BOT": bad_token, "SIGNING": signing})
    assert "channels.team.bot_token" in str(info.value) and "xoxb-" in str(info.value)
    assert bad_token not in str(info.value) and signing not in str(info.value)
    monkeypatch.setenv("BOT", BOT_TOKEN)
    monkeypatch.setenv("SIGNING", signing)
    good = CliRunner().invoke(main, ["check-config", str(path)])
    assert good.exit_code == 0, good.output
    assert BOT_TOKEN not in good.output and signing not in good.output
