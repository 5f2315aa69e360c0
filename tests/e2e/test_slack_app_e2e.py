"""The Slack app through `alert-receiver serve` for real (gunicorn, the engine, SQLite and PostgreSQL), with a local
HTTP server playing Slack's Web API (tests/support/slack_api.py) and second-scale timers:

- an alert that climbs L3 → L2 → L1, repeats and resolves is one root message; every step is a reply in its
  thread; the root is edited (chat.update) after each, and the last edit shows it resolved, without buttons;
- clicking Acknowledge (a signed interaction to /integrations/slack/interactions, as Slack sends it) stops the
  climb and the root is edited to show who acknowledged.

Every wait polls with a deadline; nothing sleeps a fixed time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import urllib.parse

import pytest
import requests
import yaml

from ..engine.harness import body_with
from ..support.fixtures import raw
from ..support.process import ReceiverProcess
from ..support.slack_api import CHANNEL_ID, SlackApi

pytestmark = pytest.mark.e2e

TOKEN = "xoxb-e2e-0000-bot-token"
SIGNING_SECRET = "e2e-signing-secret-0123456789"


@pytest.fixture
def slack():
    api = SlackApi(TOKEN).start()
    yield api
    api.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/receiver.db"
    return request.getfixturevalue("pg_server").database_for(tmp_path, "slack")


@pytest.fixture
def receiver_for(tmp_path, database, slack):
    started = []

    def start(escalation: dict) -> ReceiverProcess:
        path = tmp_path / "receiver.yml"
        path.write_text(yaml.safe_dump({
            "database": {"url": database},
            "escalation": escalation,
            "channels": {"team-chat": {"type": "slack_app", "bot_token": TOKEN, "signing_secret": SIGNING_SECRET,
                                       "channel": CHANNEL_ID, "api_url": slack.url,
                                       "repeat_digest": {"window": "1s"}}},
            "routes": [{"levels": {"L3": ["team-chat"], "L2": ["team-chat"], "L1": ["team-chat"]}}],
        }))
        receiver = ReceiverProcess(path, workers=2).start().wait_ready()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        assert receiver.stop() == 0, receiver.log()


def post(receiver: ReceiverProcess, body: bytes | dict) -> None:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    r = requests.post(receiver.url + "/webhook", data=data, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 200, r.text


def _resolved(name: str) -> dict:
    doc = json.loads(raw(name))
    doc["status"] = "resolved"
    now = dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    for alert in doc["alerts"]:
        alert.update(status="resolved", endsAt=now)
    return doc


def _words(call) -> str:
    return json.dumps(call.body)


def _roots(slack: SlackApi, alertname: str):
    return [c for c in slack.of("chat.postMessage") if "thread_ts" not in c.body and alertname in _words(c)]


def _replies(slack: SlackApi, ts: str) -> list[str]:
    """The headline word of each reply in the thread of `ts`, in order."""
    out = []
    for c in slack.of("chat.postMessage"):
        if c.body.get("thread_ts") == ts:
            out.append(next(w for w in ("ESCALATED", "REPEAT", "ACKNOWLEDGED", "RESOLVED", "FIRING")
                            if w in c.body["text"]))
    return out


def _actions(call) -> list[dict]:
    return [b for b in call.body.get("blocks", []) if b.get("type") == "actions"]


FAST = {"tick": "1s", "L3": {"escalate_after": "2s"}, "L2": {"escalate_after": "2s"}, "L1": {"repeat_every": "2s"}}


def test_a_climb_repeats_and_resolution_are_one_thread_with_edits_of_its_root(receiver_for, slack):
    receiver = receiver_for(FAST)
    post(receiver, raw("g_routing_info"))  # HighErrorRate, info: L3
    [root] = slack.wait("the root message", lambda s: _roots(s, "HighErrorRate"))
    root_ts = root.answer["ts"]
    assert "[L3 FIRING]" in root.body["text"] and root.authorization == f"Bearer {TOKEN}"
    assert {e["action_id"] for e in _actions(root)[0]["elements"]} == {"ack", "resolve", "escalate"}
    slack.wait("two escalations and a repeat in the thread",
               lambda s: _replies(s, root_ts)[:3] == ["ESCALATED", "ESCALATED", "REPEAT"])
    post(receiver, _resolved("g_routing_info"))
    slack.wait("the resolution in the thread", lambda s: "RESOLVED" in _replies(s, root_ts))

    def resolved_edit(s):
        edits = s.of("chat.update")
        return edits and "resolved" in edits[-1].body["text"].lower() and not _actions(edits[-1]) and edits

    edits = slack.wait("the root edited to show it resolved", resolved_edit)
    assert _roots(slack, "HighErrorRate") == [root]  # one root for the whole incident
    assert {(e.body["channel"], e.body["ts"]) for e in edits} == {(CHANNEL_ID, root_ts)}  # only the root is edited
    replies = _replies(slack, root_ts)
    assert replies[:3] == ["ESCALATED", "ESCALATED", "REPEAT"] and replies[-1] == "RESOLVED"
    assert set(replies[3:-1]) <= {"REPEAT"}
    # An edit follows each reply; one waiting unsent covers the replies after it, as it renders the state when sent.
    assert len(edits) >= 2 and ("[L2 " in edits[0].body["text"] or "[L1 " in edits[0].body["text"])
    # Every post and edit went to the channel the config names, with the bot token as bearer.
    assert {c.authorization for c in slack.calls} == {f"Bearer {TOKEN}"}
    assert all(c.body["channel"] == CHANNEL_ID for c in slack.calls)


def _interaction(value: str, action: str = "ack", user: str = "U0E2EALICE") -> tuple[bytes, dict]:
    payload = {"type": "block_actions", "user": {"id": user, "username": "alice", "name": "alice"},
               "trigger_id": f"{time.time_ns()}.trigger", "container": {"type": "message", "channel_id": CHANNEL_ID},
               "actions": [{"type": "button", "action_id": action, "block_id": "alert-receiver-actions",
                            "value": value, "action_ts": f"{time.time():.6f}"}]}
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(SIGNING_SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
                  "X-Slack-Signature": f"v0={signature}"}


def test_clicking_acknowledge_stops_the_climb_and_edits_the_root(receiver_for, slack):
    receiver = receiver_for({"tick": "1s", "L3": {"escalate_after": "5s"}, "L2": {"escalate_after": "5s"},
                             "L1": {"repeat_every": "5s"}})
    post(receiver, raw("g_routing_info"))
    [root] = slack.wait("the root message", lambda s: _roots(s, "HighErrorRate"))
    [button] = [e for e in _actions(root)[0]["elements"] if e["action_id"] == "ack"]
    body, headers = _interaction(button["value"])
    r = requests.post(receiver.url + "/integrations/slack/interactions", data=body, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    acked_at = time.monotonic()
    alert_id = int(button["value"].split(":")[1])
    level = requests.get(f"{receiver.url}/api/v1/alerts/{alert_id}", timeout=10).json()["level"]  # L3, or L2 if slow

    def acked_edit(s):
        return [e for e in s.of("chat.update") if "slack:U0E2EALICE" in _words(e)]

    [edit] = slack.wait("the root edited to show the acknowledgement", acked_edit)[:1]
    assert edit.body["ts"] == root.answer["ts"]
    assert "ack" not in {e["action_id"] for a in _actions(edit) for e in a["elements"]}
    alert = requests.get(f"{receiver.url}/api/v1/alerts/{alert_id}", timeout=10).json()
    assert alert["acked_by"] == "slack:U0E2EALICE" and alert["level"] == level
    assert [e["actor"] for e in alert["timeline"] if e["kind"] == "acked"] == ["slack:U0E2EALICE"]

    # A marker alert posted now escalates after 5 s: once its escalation arrives, the acknowledged alert's next
    # escalation time (at most 5 s after the ack) has passed, and it did not climb.
    post(receiver, body_with("g_routing_info", cluster="marker"))
    slack.wait("the marker's escalation", lambda s: [c for c in s.of("chat.postMessage")
                                                     if "ESCALATED" in c.body["text"] and "marker" in _words(c)],
               timeout=30)
    assert time.monotonic() - acked_at >= 5
    replies = _replies(slack, root.answer["ts"])
    assert replies[-1] == "ACKNOWLEDGED" and replies.count("ACKNOWLEDGED") == 1  # nothing after it: it stopped
    assert replies == ["ACKNOWLEDGED"] if level == "L3" else replies == ["ESCALATED", "ACKNOWLEDGED"]
    alert = requests.get(f"{receiver.url}/api/v1/alerts/{alert_id}", timeout=10).json()
    assert alert["level"] == level and alert["status"] == "firing"
