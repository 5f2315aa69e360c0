"""POST /integrations/slack/interactions: signed button clicks of the slack_app channel acknowledge, resolve and
escalate as `slack:<user id>`. Signatures are computed here with hmac, as Slack documents them
(https://api.slack.com/authentication/verifying-requests-from-slack), independently of the code under test."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import urllib.parse

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app

from ..support.fixtures import raw

PATH = "/integrations/slack/interactions"
SECRET = "slack-signing-secret-0123456789"
BOT_TOKEN = "xoxb-slack-bot-token-0123456789"
FORM = "application/x-www-form-urlencoded"
_TRIGGERS = itertools.count(1)


@pytest.fixture
def slack_client(make_config, clock):
    config = make_config(channels={"team": {"type": "slack_app", "bot_token": BOT_TOKEN, "signing_secret": SECRET,
                                            "channel": "C0123ABC"}},
                         routes=[{"levels": {"L1": ["team"], "L2": ["team"], "L3": ["team"]}}])
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    client = app.test_client()
    client.clock = clock
    yield client
    app.extensions["alert_receiver"].db.dispose()


def payload(action_id: str, value: str, *, user: str = "U01ALICE", kind: str = "block_actions") -> dict:
    """A block_actions payload as Slack sends it (abridged: the fields Slack always sends around the ones read)."""
    n = next(_TRIGGERS)
    return {"type": kind, "user": {"id": user, "username": "alice", "name": "alice", "team_id": "T0001"},
            "api_app_id": "A0001", "token": "deprecated-verification-token", "trigger_id": f"{n}.1.abc",
            "team": {"id": "T0001", "domain": "example"}, "channel": {"id": "C0123ABC", "name": "alerts"},
            "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C0123ABC"},
            "response_url": "https://hooks.slack.com/actions/T0001/1/xyz",
            "actions": [{"type": "button", "action_id": action_id, "block_id": "alert-receiver-actions",
                         "value": value, "text": {"type": "plain_text", "text": "Acknowledge"},
                         "action_ts": f"1700000000.{n:06d}"}]}


def form(doc: dict) -> bytes:
    return urllib.parse.urlencode({"payload": json.dumps(doc)}).encode()


def sign(body: bytes, timestamp: int | str, secret: str = SECRET) -> dict:
    base = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}", "Content-Type": FORM}


def now_ts(client) -> int:
    return int(client.clock.now().timestamp())


def click(client, action_id: str, value: str, **kw):
    body = form(payload(action_id, value, **kw))
    return client.post(PATH, data=body, headers=sign(body, now_ts(client)))


def fire(client, fixture: str = "g_routing_critical") -> list[dict]:
    assert client.post("/webhook", data=raw(fixture), content_type="application/json").status_code == 200
    return client.get("/api/v1/alerts").get_json()["alerts"]


def alert(client, alert_id: int) -> dict:
    return client.get(f"/api/v1/alerts/{alert_id}").get_json()


def events(client, alert_id: int, kind: str) -> list[dict]:
    return [e for e in alert(client, alert_id)["timeline"] if e["kind"] == kind]


def test_a_signed_ack_acknowledges_as_the_slack_user(slack_client):
    [a] = fire(slack_client)
    resp = click(slack_client, "ack", f"alert:{a['id']}")
    assert resp.status_code == 200 and resp.get_json()["status"] == "applied", resp.get_json()
    shown = alert(slack_client, a["id"])
    assert shown["acked"] and shown["acked_by"] == "slack:U01ALICE"
    [acked] = events(slack_client, a["id"], "acked")
    assert acked["actor"] == "slack:U01ALICE" and acked["comment"] == "Acknowledge clicked in Slack by @alice"


@pytest.mark.parametrize("how", ["wrong-secret", "stale", "future", "changed-body", "unsigned", "garbage"])
def test_bad_signatures_are_refused_and_change_nothing(slack_client, how):
    [a] = fire(slack_client)
    body = form(payload("ack", f"alert:{a['id']}"))
    ts = now_ts(slack_client)
    headers = {"wrong-secret": lambda: sign(body, ts, "not-the-secret"),
               "stale": lambda: sign(body, ts - 301),
               "future": lambda: sign(body, ts + 301),
               "changed-body": lambda: sign(form(payload("ack", "alert:999")), ts),  # a replay, body swapped
               "unsigned": lambda: {"Content-Type": FORM},
               "garbage": lambda: {"X-Slack-Request-Timestamp": "x", "X-Slack-Signature": "v0=00",
                                   "Content-Type": FORM}}[how]()
    resp = slack_client.post(PATH, data=body, headers=headers)
    assert resp.status_code == 401 and resp.get_json()["error"] == "bad_signature"
    assert SECRET not in resp.get_data(as_text=True)
    shown = alert(slack_client, a["id"])
    assert shown["acked_at"] is None and events(slack_client, a["id"], "acked") == []


def test_a_timestamp_within_five_minutes_is_accepted(slack_client):
    [a] = fire(slack_client)
    body = form(payload("ack", f"alert:{a['id']}"))
    resp = slack_client.post(PATH, data=body, headers=sign(body, now_ts(slack_client) - 299))
    assert resp.status_code == 200 and resp.get_json()["status"] == "applied"


def test_the_same_interaction_twice_acts_once(slack_client):
    [a] = fire(slack_client)
    body = form(payload("ack", f"alert:{a['id']}"))
    headers = sign(body, now_ts(slack_client))
    first = slack_client.post(PATH, data=body, headers=headers)
    slack_client.clock.advance(2)
    again = slack_client.post(PATH, data=body, headers=headers)  # Slack's retry: the very same request
    resigned = slack_client.post(PATH, data=body, headers=sign(body, now_ts(slack_client)))  # re-signed later
    assert first.get_json()["status"] == "applied"
    for resp in (again, resigned):
        assert resp.status_code == 200 and resp.get_json()["status"] == "ignored"
        assert resp.get_json()["reason"].startswith("duplicate")
    assert len(events(slack_client, a["id"], "acked")) == 1


def test_escalate_twice_by_a_retry_climbs_one_level(slack_client):
    [a] = fire(slack_client, "g_routing_info")
    assert a["level"] == "L3"
    body = form(payload("escalate", f"alert:{a['id']}"))
    for _ in range(2):
        assert slack_client.post(PATH, data=body, headers=sign(body, now_ts(slack_client))).status_code == 200
    shown = alert(slack_client, a["id"])
    assert shown["level"] == "L2"
    [escalated] = events(slack_client, a["id"], "escalated")
    assert escalated["actor"] == "slack:U01ALICE" and escalated["to_level"] == "L2"


def test_resolve_button(slack_client):
    [a] = fire(slack_client)
    resp = click(slack_client, "resolve", f"alert:{a['id']}")
    assert resp.get_json()["status"] == "applied"
    shown = alert(slack_client, a["id"])
    assert shown["status"] == "resolved" and shown["resolved_by"] == "slack:U01ALICE"
    # A second, different click on a resolved alert: nothing to do, answered 200 so Slack shows no error.
    resp = click(slack_client, "resolve", f"alert:{a['id']}", user="U02BOB")
    assert resp.status_code == 200 and resp.get_json()["status"] == "ignored"
    assert len(events(slack_client, a["id"], "resolved")) == 1


def test_escalate_at_the_top_is_ignored_with_its_reason(slack_client):
    [a] = fire(slack_client)
    resp = click(slack_client, "escalate", f"alert:{a['id']}")
    assert resp.status_code == 200 and resp.get_json()["status"] == "ignored"
    assert "L1 is the top level" in resp.get_json()["actions"][0]["reason"]


def test_group_values_act_on_every_firing_alert_of_the_group(slack_client):
    alerts = fire(slack_client, "b_group_5_firing")
    assert len(alerts) == 5
    group = {a["group_id"] for a in alerts}
    assert len(group) == 1
    group_id = group.pop()
    resp = click(slack_client, "ack", f"group:{group_id}")
    assert resp.get_json()["status"] == "applied" and len(resp.get_json()["actions"][0]["changed"]) == 5
    assert all(alert(slack_client, a["id"])["acked_by"] == "slack:U01ALICE" for a in alerts)
    resp = click(slack_client, "resolve", f"group:{group_id}")
    assert sorted(resp.get_json()["actions"][0]["changed"]) == sorted(a["id"] for a in alerts)
    for a in alerts:
        shown = alert(slack_client, a["id"])
        assert shown["status"] == "resolved" and shown["resolved_by"] == "slack:U01ALICE"
    resp = click(slack_client, "ack", f"group:{group_id}")  # nothing firing is left
    assert resp.status_code == 200 and resp.get_json()["status"] == "unchanged"


def test_group_escalate_climbs_each_alert_of_the_group(slack_client):
    alerts = fire(slack_client, "g_routing_warning_not_inhibited")
    group_id = alerts[0]["group_id"]
    before = {a["id"]: a["level"] for a in alerts}
    assert "L1" not in before.values()
    resp = click(slack_client, "escalate", f"group:{group_id}")
    assert resp.status_code == 200 and resp.get_json()["status"] == "applied"
    for a in alerts:
        assert alert(slack_client, a["id"])["level"] == {"L3": "L2", "L2": "L1"}[before[a["id"]]]
        assert events(slack_client, a["id"], "escalated")[0]["actor"] == "slack:U01ALICE"


@pytest.mark.parametrize("doc,words", [
    ("not json", "payload is not JSON"),
    ([1, 2], "not a JSON object"),
    ({"type": "block_actions"}, "payload.user must be an object"),
    ({"type": "block_actions", "user": {"id": "<script>"}}, "payload.user.id must be a Slack member ID"),
    ({"type": "block_actions", "user": {"id": "U1"}, "actions": "ack"}, "payload.actions must be a list"),
    ({"user": {"id": "U01"}}, "payload.type is missing"),
], ids=["not-json", "array", "no-user", "bad-user-id", "actions-not-list", "no-type"])
def test_a_malformed_payload_after_a_valid_signature_is_a_clear_400(slack_client, doc, words):
    [a] = fire(slack_client)
    text = doc if isinstance(doc, str) else json.dumps(doc)
    body = urllib.parse.urlencode({"payload": text}).encode()
    resp = slack_client.post(PATH, data=body, headers=sign(body, now_ts(slack_client)))
    assert resp.status_code == 400 and resp.get_json()["error"] == "malformed_payload"
    assert words in resp.get_json()["detail"], resp.get_json()
    assert alert(slack_client, a["id"])["acked_at"] is None


def test_other_payload_types_and_foreign_buttons_are_ignored_with_200(slack_client):
    [a] = fire(slack_client)
    resp = click(slack_client, "ack", f"alert:{a['id']}", kind="view_submission")
    assert resp.status_code == 200 and resp.get_json()["status"] == "ignored"
    for action_id, value in (("snooze", f"alert:{a['id']}"), ("ack", "alert:abc"), ("ack", "group:xyz"),
                             ("ack", "alert:987654")):
        resp = click(slack_client, action_id, value)
        assert resp.status_code == 200 and resp.get_json()["status"] == "ignored", (action_id, value)
    assert alert(slack_client, a["id"])["acked_at"] is None


def test_without_a_slack_app_signing_secret_the_endpoint_is_off(client):
    resp = client.post(PATH, data=b"payload=%7B%7D", content_type=FORM)
    assert resp.status_code == 404 and resp.get_json()["error"] == "not_configured"
