"""Mattermost and Google Chat: the exact JSON each sends for a firing and a resolved message, hostile label values
shown as text (no Markdown, no link, no mention, no HTML), Google Chat threading one group per thread, the person
paged by name only, and the webhook's secret in no log line. Transport behaviour is test_http_conformance.py's."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
from pydantic import ValidationError

from receiver.channels.base import DeliveryError
from receiver.channels.google_chat import GoogleChatSettings
from receiver.channels.mattermost import MattermostSettings
from receiver.config import ConfigError, dump_redacted, load_config
from receiver.domain import Recipient

from ..support.messages import T0, make_alert, make_message
from .conftest import GCHAT_KEY, GCHAT_POST_URL, GCHAT_TOKEN, GCHAT_URL, MATTERMOST_URL

HOSTILE = {"alertname": "*bold* <http://evil|x> @channel", "instance": "<b>&", "severity": "critical"}
ZWJ = "\u2060"
DETAILS, ACK = "https://alerts.example.org/alerts/1", "https://alerts.example.org/a/token-1"
SOURCE = "http://prometheus.example.org/graph?g0.expr=cpu%3E0.9&g0.tab=1"


def resolved_message():
    return make_message((make_alert(1, status="resolved", ends_at=T0),), kind="resolved")


def sent(mock_http, url, channel, message) -> dict:
    mock_http.post(url, body="ok")
    channel.send(message)
    assert len(mock_http.calls) == 1
    return json.loads(mock_http.calls[0].request.body)


# --- Mattermost ---------------------------------------------------------------------------------------------


def test_mattermost_firing_shape(make_channel, mock_http):
    channel = make_channel("mattermost", channel="ops", username="alert-receiver",
                           icon_url="https://alerts.example.org/icon.png")
    assert sent(mock_http, MATTERMOST_URL, channel, make_message()) == {
        "text": "**\\[L1 FIRING\\] HighCPUUsage \\(1 alert\\)**",
        "attachments": [{
            "fallback": "HighCPUUsage firing: CPU usage above 90% on api-gw-1",
            "color": "#d62728",
            "title": "HighCPUUsage",
            "title_link": SOURCE,
            "text": "CPU usage above 90% on api-gw-1\nCPU usage has been above 90% for more than 5 minutes.\n"
                    f"[Details]({DETAILS}) · [Acknowledge]({ACK})",
            "fields": [{"short": True, "title": "Level", "value": "L1"},
                       {"short": True, "title": "Status", "value": "firing"},
                       {"short": True, "title": "Source", "value": "api-gw-1.internal:9100"}],
        }],
        "channel": "ops", "username": "alert-receiver", "icon_url": "https://alerts.example.org/icon.png",
    }
    assert mock_http.calls[0].request.headers["Content-Type"] == "application/json"


def test_mattermost_resolved_shape(make_channel, mock_http):
    body = sent(mock_http, MATTERMOST_URL, make_channel("mattermost"), resolved_message())
    assert body == {
        "text": "**\\[L1 RESOLVED\\] HighCPUUsage \\(1 alert\\)**",
        "attachments": [{
            "fallback": "HighCPUUsage resolved: CPU usage above 90% on api-gw-1",
            "color": "#2ca02c",
            "title": "HighCPUUsage",
            "title_link": SOURCE,
            # No Acknowledge link on a resolved alert.
            "text": "CPU usage above 90% on api-gw-1\nCPU usage has been above 90% for more than 5 minutes.\n"
                    f"[Details]({DETAILS})",
            "fields": [{"short": True, "title": "Level", "value": "L1"},
                       {"short": True, "title": "Status", "value": "resolved after 12m"},
                       {"short": True, "title": "Source", "value": "api-gw-1.internal:9100"}],
        }],
    }


def test_mattermost_escapes_hostile_labels(make_channel, mock_http):
    alert = make_alert(1, labels=HOSTILE, annotations={"summary": "<b>& @all _x_\n- item\n# heading"})
    body = sent(mock_http, MATTERMOST_URL, make_channel("mattermost"), make_message((alert,)))
    attachment = body["attachments"][0]
    assert body["text"] == f"**\\[L1 FIRING\\] \\*bold\\* \\<http://evil\\|x\\> @{ZWJ}channel \\(1 alert\\)**"
    assert attachment["title"] == f"\\*bold\\* \\<http://evil\\|x\\> @{ZWJ}channel"
    assert attachment["text"].startswith(f"\\<b\\>& @{ZWJ}all \\_x\\_\n\\- item\n\\# heading\n")
    assert {"short": True, "title": "Source", "value": "\\<b\\>&"} in attachment["fields"]
    # Fallback is plain text, but a mention there would still notify the channel.
    assert "@channel" not in json.dumps(body, ensure_ascii=False) and "@all" not in json.dumps(body, ensure_ascii=False)


def test_mattermost_names_the_person_paged_and_nothing_else(make_channel, mock_http):
    alice = Recipient("alice @here", email="alice@example.org", phone="+4915550001", slack_user="U01ALICE")
    body = sent(mock_http, MATTERMOST_URL, make_channel("mattermost"), make_message(recipient=alice))
    assert body["text"].endswith(f" — for alice @{ZWJ}here")
    text = json.dumps(body)
    assert "alice@example.org" not in text and "+4915550001" not in text and "U01ALICE" not in text


# --- Google Chat --------------------------------------------------------------------------------------------


def test_google_chat_resolved_shape_and_threading(make_channel, mock_http):
    message = resolved_message()
    body = sent(mock_http, GCHAT_POST_URL, make_channel("google_chat"), message)
    key = "alert-receiver-" + hashlib.sha256(message.group_key.encode()).hexdigest()[:32]

    def button(text, url):
        return {"text": text, "onClick": {"openLink": {"url": url}}}

    assert body == {
        "text": "[L1 RESOLVED] HighCPUUsage (1 alert)",
        "cardsV2": [{"cardId": "alert-receiver-7", "card": {
            "header": {"title": "[L1 RESOLVED] HighCPUUsage (1 alert)"},
            "sections": [
                {"widgets": [
                    {"decoratedText": {"topLabel": "L1 · resolved after 12m · api-gw-1.internal:9100",
                                       "text": "<b>HighCPUUsage</b>", "wrapText": True}},
                    {"textParagraph": {"text": "CPU usage above 90% on api-gw-1<br>"
                                               "CPU usage has been above 90% for more than 5 minutes."}},
                    {"buttonList": {"buttons": [button("Details", DETAILS), button("Source", SOURCE)]}}]},
                {"widgets": [{"buttonList": {"buttons": [
                    button("Open alert-receiver", "https://alerts.example.org")]}}]},
            ]}}],
        "thread": {"threadKey": key},
    }
    # One thread per group: the reply option Google documents, and the same key for the group's firing message.
    assert mock_http.calls[0].request.url == GCHAT_POST_URL
    assert "messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD" in mock_http.calls[0].request.url


def test_google_chat_firing_shape(make_channel, mock_http):
    message = make_message()
    body = sent(mock_http, GCHAT_POST_URL, make_channel("google_chat"), message)
    first = body["cardsV2"][0]["card"]["sections"][0]["widgets"]
    assert first[0] == {"decoratedText": {"topLabel": "L1 · firing · api-gw-1.internal:9100",
                                          "text": "<b>HighCPUUsage</b>", "wrapText": True}}
    assert [b["text"] for b in first[2]["buttonList"]["buttons"]] == ["Details", "Acknowledge", "Source"]
    assert body["text"] == "[L1 FIRING] HighCPUUsage (1 alert)"
    resolved = sent_again(mock_http, make_channel("google_chat"), resolved_message())
    assert body["thread"] == resolved["thread"]  # firing and resolution of one group share a thread
    other = sent_again(mock_http, make_channel("google_chat"), make_message(group_key='{}:{alertname="Other"}'))
    assert other["thread"] != body["thread"]


def sent_again(mock_http, channel, message) -> dict:
    channel.send(message)
    return json.loads(mock_http.calls[-1].request.body)


def test_google_chat_without_threading_starts_new_threads(make_channel, mock_http):
    mock_http.post(GCHAT_URL, body="{}")
    make_channel("google_chat", thread_by_group=False).send(make_message())
    body = json.loads(mock_http.calls[0].request.body)
    assert "thread" not in body and "messageReplyOption" not in mock_http.calls[0].request.url


def test_google_chat_escapes_hostile_labels(make_channel, mock_http):
    alert = make_alert(1, labels=HOSTILE, annotations={"summary": "<b>& <users/all>"})
    message = make_message((alert,), recipient=Recipient("<i>bob</i>", email="bob@example.org"))
    body = sent(mock_http, GCHAT_POST_URL, make_channel("google_chat"), message)
    card = body["cardsV2"][0]["card"]
    widgets = card["sections"][0]["widgets"]
    assert widgets[0]["decoratedText"]["text"] == "<b>*bold* &lt;http://evil|x&gt; @channel</b>"
    assert widgets[0]["decoratedText"]["topLabel"] == "L1 · firing · &lt;b&gt;&amp;"
    assert widgets[1]["textParagraph"]["text"] == "&lt;b&gt;&amp; &lt;users/all&gt;"
    assert body["text"].startswith("[L1 FIRING] *bold* &lt;http://evil|x&gt; @channel (1 alert) — for &lt;i&gt;bob")
    # The header is plain text (Chat reads no markup there): shown as written, not as entities.
    assert card["header"] == {"title": "[L1 FIRING] *bold* <http://evil|x> @channel (1 alert)",
                              "subtitle": "for <i>bob</i>"}
    assert "bob@example.org" not in json.dumps(body)


# --- secrets and settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,url,secrets", [
    ("mattermost", MATTERMOST_URL, ("leak-mm-hook-secret-0123456789",)),
    ("google_chat", GCHAT_POST_URL, (GCHAT_KEY, GCHAT_TOKEN)),
])
def test_the_secret_is_never_logged(kind, url, secrets, make_channel, mock_http, caplog):
    caplog.set_level(logging.DEBUG)
    mock_http.post(url, body="ok")
    channel = make_channel(kind)
    channel.send(make_message())
    mock_http.replace("POST", url, status=403, body="forbidden: " + " ".join(secrets))
    with pytest.raises(DeliveryError) as info:
        channel.send(make_message())
    assert not info.value.retryable
    for secret in secrets:
        assert secret not in caplog.text and secret not in str(info.value) and secret not in repr(channel.settings)


@pytest.mark.parametrize("model,values", [
    (MattermostSettings, {"type": "mattermost", "webhook_url": "http://chat.example.org/hooks/leak-x"}),
    (GoogleChatSettings, {"type": "google_chat",
                          "webhook_url": "https://evil.example.org/v1/spaces/A/messages?key=leak-x"}),
    (GoogleChatSettings, {"type": "google_chat", "webhook_url": "https://chat.googleapis.com/v2/other?key=leak-x"}),
])
def test_a_bad_webhook_url_is_refused_without_showing_it(model, values):
    with pytest.raises(ValidationError) as info:
        model.model_validate(values)
    assert [e["loc"] for e in info.value.errors()] == [("webhook_url",)]
    assert all("leak-x" not in e["msg"] for e in info.value.errors())


RECEIVER_YML = """\
channels:
  mm: {type: mattermost, webhook_url: "${MM_URL}", channel: ops, username: alert-receiver}
  gchat: {type: google_chat, webhook_url: "${GCHAT_URL}"}
routes:
  - levels: {L1: [mm, gchat], L2: [mm], L3: [gchat]}
"""


def test_a_receiver_yml_with_both_types_loads(tmp_path):
    path = tmp_path / "receiver.yml"
    path.write_text(RECEIVER_YML)
    config = load_config(path, env={"MM_URL": MATTERMOST_URL, "GCHAT_URL": GCHAT_URL})
    assert config.channels["mm"].type == "mattermost" and config.channels["mm"].channel == "ops"
    assert config.channels["gchat"].webhook_url.reveal() == GCHAT_URL and config.channels["gchat"].thread_by_group
    assert GCHAT_TOKEN not in dump_redacted(config) and "leak-mm-hook" not in dump_redacted(config)


@pytest.mark.parametrize("channel,env", [
    ("mm", {"MM_URL": "ftp://chat.example.org/hooks/leak-mm", "GCHAT_URL": GCHAT_URL}),
    ("gchat", {"MM_URL": MATTERMOST_URL, "GCHAT_URL": "https://chat.example.org/v1/spaces/A/messages?token=leak-gc"}),
])
def test_a_bad_webhook_url_is_a_config_error_naming_the_key(tmp_path, channel, env):
    path = tmp_path / "receiver.yml"
    path.write_text(RECEIVER_YML)
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env)
    assert [p.key for p in info.value.errors] == [f"channels.{channel}.webhook_url"]
    assert "leak-" not in str(info.value)
