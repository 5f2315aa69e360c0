"""The slack_app channel: the Web API calls it makes for a root, a reply, an update and a digest (answered by
`responses`), the Block Kit it sends (buttons, limits, escaping), how Slack's `ok: false` codes map to retries,
and that the bot token never shows in an error or a log."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
from responses import matchers

from receiver.channels.base import DeliveryError
from receiver.channels.slack import MAX_BLOCKS, SECTION_TEXT_LIMIT
from receiver.domain import ChatThread, Posted, Recipient

from ..support.messages import make_alert, make_message
from .conftest import SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET

API = "https://slack.com/api"
POST_URL, UPDATE_URL = f"{API}/chat.postMessage", f"{API}/chat.update"
GROUP = "0123456789abcdef"
THREAD = ChatThread(conversation="C0123ABC", root_id="1700000000.000100")
OK_ROOT = {"ok": True, "channel": "C0123ABC", "ts": "1700000000.000100", "message": {}}
AUTH = {"Authorization": f"Bearer {SLACK_BOT_TOKEN}", "Content-Type": "application/json; charset=utf-8"}


def sent(mock_http, k: int = -1) -> dict:
    return json.loads(mock_http.calls[k].request.body)


def actions_of(body: dict) -> list[dict]:
    return [b for b in body["blocks"] if b["type"] == "actions"]


def test_a_new_group_posts_a_root_with_buttons_and_returns_its_ids(make_channel, mock_http):
    mock_http.post(POST_URL, json=OK_ROOT, match=[matchers.header_matcher(AUTH)])
    posted = make_channel("slack_app", timeout="4s").send(make_message(group_id=GROUP))
    assert posted == Posted(conversation="C0123ABC", root_id="1700000000.000100")
    request = mock_http.calls[0].request
    assert request.req_kwargs["timeout"] == (4.0, 4.0)
    body = sent(mock_http)
    assert body["channel"] == "C0123ABC" and "thread_ts" not in body
    assert body["text"].startswith("[L1 FIRING] HighCPUUsage (1 alert)")
    assert body["blocks"][0] == {"type": "section", "text": {"type": "mrkdwn",
                                                             "text": "*[L1 FIRING] HighCPUUsage (1 alert)*"}}
    assert body["blocks"][1]["type"] == "context" and "1 firing" in body["blocks"][1]["elements"][0]["text"]
    assert "HighCPUUsage" in body["blocks"][2]["text"]["text"]
    [actions] = actions_of(body)
    assert [(b["action_id"], b["value"]) for b in actions["elements"]] == [
        ("ack", "alert:1"), ("resolve", "alert:1"), ("escalate", "alert:1")]
    assert all(b["type"] == "button" and b["text"]["type"] == "plain_text" for b in actions["elements"])


def test_a_message_of_several_alerts_acts_on_its_group(make_channel, mock_http):
    mock_http.post(POST_URL, json=OK_ROOT)
    make_channel("slack_app").send(make_message(3, group_id=GROUP))
    [actions] = actions_of(sent(mock_http))
    assert {b["value"] for b in actions["elements"]} == {f"group:{GROUP}"}


def test_a_reply_goes_into_the_thread_without_buttons_and_mentions_the_person_paged(make_channel, mock_http):
    mock_http.post(POST_URL, json={"ok": True, "channel": "C0123ABC", "ts": "1700000001.000200"})
    alice = Recipient("alice", slack_user="U01ALICE")
    result = make_channel("slack_app").send(make_message(kind="escalated", thread=THREAD, recipient=alice,
                                                         group_id=GROUP))
    assert result is None
    body = sent(mock_http)
    assert body["channel"] == "C0123ABC" and body["thread_ts"] == THREAD.root_id
    assert body["text"].startswith("<@U01ALICE> [L1 ESCALATED]")
    assert body["blocks"][0]["text"]["text"].startswith("<@U01ALICE> *[L1 ESCALATED]")
    assert actions_of(body) == []


def test_an_update_edits_the_root_showing_who_acknowledged(make_channel, mock_http):
    mock_http.post(UPDATE_URL, json={"ok": True, "channel": "C0123ABC", "ts": THREAD.root_id})
    alerts = (make_alert(1, acked_by="slack:U01ALICE"), make_alert(2, acked_by="bob"))
    result = make_channel("slack_app").send(make_message(alerts, kind="update", level="L2", thread=THREAD,
                                                         group_id=GROUP))
    assert result is None and mock_http.calls[0].request.url == UPDATE_URL
    body = sent(mock_http)
    assert body["channel"] == THREAD.conversation and body["ts"] == THREAD.root_id
    assert body["blocks"][0]["text"]["text"] == "*[L2 ACKNOWLEDGED] HighCPUUsage (2 alerts)*"
    assert "Acknowledged by slack:U01ALICE, bob" in body["blocks"][1]["elements"][0]["text"]
    [actions] = actions_of(body)  # everyone acknowledged: no Acknowledge button, the others stay
    assert [b["action_id"] for b in actions["elements"]] == ["resolve", "escalate"]


def test_an_update_of_a_resolved_group_has_no_buttons(make_channel, mock_http):
    mock_http.post(UPDATE_URL, json={"ok": True})
    alerts = (make_alert(1, status="resolved", ends_at=make_alert(1).starts_at.replace(hour=10)),)
    make_channel("slack_app").send(make_message(alerts, kind="update", thread=THREAD, group_id=GROUP))
    body = sent(mock_http)
    assert body["blocks"][0]["text"]["text"].startswith("*[L1 RESOLVED]")
    assert actions_of(body) == [] and "1 resolved" in body["blocks"][1]["elements"][0]["text"]


def test_a_still_firing_update_keeps_every_button(make_channel, mock_http):
    mock_http.post(UPDATE_URL, json={"ok": True})
    make_channel("slack_app").send(make_message(2, kind="update", thread=THREAD, group_id=GROUP))
    body = sent(mock_http)
    assert body["blocks"][0]["text"]["text"].startswith("*[L1 FIRING]")
    assert [b["action_id"] for b in actions_of(body)[0]["elements"]] == ["ack", "resolve", "escalate"]


def test_a_digest_is_one_top_level_message_without_buttons(make_channel, mock_http):
    mock_http.post(POST_URL, json=OK_ROOT)
    result = make_channel("slack_app").send(make_message(6, kind="repeat", digest_groups=3, group_key=""))
    assert result is None
    body = sent(mock_http)
    assert body["channel"] == "C0123ABC" and "thread_ts" not in body and actions_of(body) == []


def test_limits_50_blocks_and_3000_characters(make_channel, mock_http):
    mock_http.post(POST_URL, json=OK_ROOT)
    long = make_alert(1, annotations={"summary": "s" * 5000, "description": "d" * 5000})
    alerts = (long,) + tuple(make_alert(i) for i in range(2, 120))
    make_channel("slack_app").send(make_message(alerts, group_id=GROUP, summary_over=200))
    body = sent(mock_http)
    assert len(body["blocks"]) <= MAX_BLOCKS
    texts = [b["text"]["text"] for b in body["blocks"] if "text" in b]
    texts += [e["text"] for b in body["blocks"] if b["type"] == "context" for e in b["elements"]]
    assert max(map(len, texts)) <= SECTION_TEXT_LIMIT and len(body["text"]) <= 3000
    assert any("more alerts (119 in all)" in t for t in texts)
    assert actions_of(body)  # the buttons are never crowded out


def test_markup_in_labels_is_escaped(make_channel, mock_http):
    mock_http.post(POST_URL, json=OK_ROOT)
    alert = make_alert(1, alertname="<!channel> <https://evil.example|Acknowledge>")
    make_channel("slack_app").send(make_message((alert,)))
    body = json.dumps(sent(mock_http))
    assert "<!channel>" not in body and "&lt;!channel&gt;" in body and "<https://evil.example" not in body


@pytest.mark.parametrize("code", ["ratelimited", "internal_error", "fatal_error", "service_unavailable",
                                  "request_timeout"])
def test_slack_errors_a_retry_can_fix_are_retryable(code, make_channel, mock_http):
    mock_http.post(POST_URL, json={"ok": False, "error": code}, headers={"Retry-After": "30"})
    with pytest.raises(DeliveryError) as info:
        make_channel("slack_app").send(make_message())
    assert info.value.retryable is True and info.value.reason == f"slack chat.postMessage: {code}"
    assert info.value.retry_after == 30.0


@pytest.mark.parametrize("code", ["channel_not_found", "not_in_channel", "invalid_auth", "token_revoked",
                                  "msg_too_long", "invalid_blocks", "something_new"])
def test_other_slack_errors_are_permanent(code, make_channel, mock_http):
    mock_http.post(POST_URL, json={"ok": False, "error": code})
    with pytest.raises(DeliveryError) as info:
        make_channel("slack_app").send(make_message())
    assert info.value.retryable is False and code in info.value.reason


def test_http_429_honours_retry_after(make_channel, mock_http):
    mock_http.post(POST_URL, status=429, json={"ok": False, "error": "ratelimited"}, headers={"Retry-After": "12"})
    with pytest.raises(DeliveryError) as info:
        make_channel("slack_app").send(make_message())
    assert info.value.retryable is True and info.value.retry_after == 12.0


def test_an_answer_that_is_not_json_is_retryable_and_one_without_ids_permanent(make_channel, mock_http):
    mock_http.post(POST_URL, body="<html>proxy</html>")
    with pytest.raises(DeliveryError) as info:
        make_channel("slack_app").send(make_message())
    assert info.value.retryable is True and "not Slack's JSON" in info.value.reason
    mock_http.replace("POST", POST_URL, json={"ok": True})
    with pytest.raises(DeliveryError) as info:
        make_channel("slack_app").send(make_message())
    assert info.value.retryable is False and "no channel and ts" in info.value.reason


@pytest.mark.parametrize("answer", [
    {"ok": False, "error": f"invalid_auth {SLACK_BOT_TOKEN}"},
    {"ok": False, "error": SLACK_BOT_TOKEN},
    {"ok": False, "error": "x" * 150 + SLACK_BOT_TOKEN},
], ids=["code-with-token", "token-as-code", "long-code"])
def test_the_token_never_shows_in_errors_or_logs(answer, make_channel, mock_http, caplog):
    caplog.set_level(logging.DEBUG)
    mock_http.post(POST_URL, json=answer)
    with pytest.raises(DeliveryError) as info:
        make_channel("slack_app").send(make_message())
    for text in (info.value.reason, repr(info.value), caplog.text):
        assert SLACK_BOT_TOKEN not in text and "leak-slack-bot" not in text and SLACK_SIGNING_SECRET not in text


def test_an_http_error_body_echoing_the_token_is_masked(make_channel, mock_http):
    mock_http.post(POST_URL, status=400, body="x" * 180 + f"Bearer {SLACK_BOT_TOKEN} refused")
    with pytest.raises(DeliveryError) as info:
        make_channel("slack_app").send(make_message())
    assert "HTTP 400" in info.value.reason and "leak-slack" not in info.value.reason


def test_an_update_without_a_thread_is_a_permanent_error(make_channel, mock_http):
    with pytest.raises(DeliveryError) as info:
        make_channel("slack_app").send(make_message(kind="update"))
    assert info.value.retryable is False and len(mock_http.calls) == 0


def test_threads_and_rate_limit(make_channel):
    channel = make_channel("slack_app")
    assert channel.threads is True and channel.rate_limit.count == 1.0 and channel.rate_limit.per == 1.0
    assert channel.repeat_digest is not None  # a chat channel: repeats fold into a digest by default


@pytest.mark.parametrize("field,value", [("bot_token", "not-a-bot-token"), ("channel", "Alerts Prod!"),
                                         ("channel", "x" * 200), ("api_url", "ftp://slack.example"),
                                         ("signing_secret", "short")])
def test_settings_are_checked(field, value, make_channel):
    # (The config loader's messages never quote a value: tests/security/test_secret_leaks.py.)
    with pytest.raises(ValueError):
        make_channel("slack_app", **{field: value})


def test_settings_accept_channel_names_and_a_local_api(make_channel, mock_http):
    channel = make_channel("slack_app", channel="#alerts-prod", api_url="http://127.0.0.1:9/api/")
    mock_http.post("http://127.0.0.1:9/api/chat.postMessage", json=OK_ROOT)
    assert channel.send(make_message()) == Posted("C0123ABC", OK_ROOT["ts"])
    assert sent(mock_http)["channel"] == "#alerts-prod"
    assert dataclasses.replace(make_message(), thread=THREAD).thread == THREAD
