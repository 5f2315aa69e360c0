"""Channels for people send a group above `summary_over` as one summary: counts, the first `summary_over`
alerts, a link to the receiver — never a flood, and nothing silently dropped. Machines get every alert."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Callable

import pytest

from ..support.messages import make_message
from .conftest import GCHAT_POST_URL, MATTERMOST_URL, SLACK_URL, TEAMS_URL


@dataclass(frozen=True)
class Seen:
    messages: int  # how many messages went out
    listed: int  # how many alerts they list
    text: str  # everything a person reads


def _slack(make_channel, mock_http, caplog, message) -> Seen:
    mock_http.post(SLACK_URL, body="ok")
    make_channel("slack").send(message)
    blocks = [b for call in mock_http.calls for b in json.loads(call.request.body)["attachments"][0]["blocks"]]
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    return Seen(len(mock_http.calls), len(texts) - 1, "\n".join(texts))


def _email(make_channel, mock_http, caplog, message) -> Seen:
    mail = make_channel("email", smtp_host="smtp.example.org", to=["a@example.org"],
                        **{"from": "alerts@example.org"}).build(message)
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert html.count("<h3") == text.count("\n== ")
    return Seen(1, text.count("\n== "), text + html)


def _msteams(make_channel, mock_http, caplog, message) -> Seen:
    mock_http.post(TEAMS_URL, status=202)
    make_channel("msteams").send(message)
    body = [b for call in mock_http.calls for b in json.loads(call.request.body)["attachments"][0]["content"]["body"]]
    containers = [b for b in body if b["type"] == "Container"]
    text = "\n".join(b.get("text", "") for b in body) + json.dumps(mock_http.calls[0].request.body.decode())
    return Seen(len(mock_http.calls), len(containers), text)


def _log(make_channel, mock_http, caplog, message) -> Seen:
    caplog.set_level(logging.INFO, logger="receiver.channels.log")
    make_channel("log").send(message)
    records = [r for r in caplog.records if r.name == "receiver.channels.log"]
    text = "\n".join(r.getMessage() for r in records)
    return Seen(len(records), sum(1 for line in text.splitlines() if line.startswith("- ")), text)


def _mattermost(make_channel, mock_http, caplog, message) -> Seen:
    mock_http.post(MATTERMOST_URL, body="ok")
    make_channel("mattermost").send(message)
    payloads = [json.loads(call.request.body) for call in mock_http.calls]
    texts = [p["text"] for p in payloads] + [a["text"] for p in payloads for a in p["attachments"]]
    fields = [f["value"] for p in payloads for a in p["attachments"] for f in a["fields"]]
    return Seen(len(payloads), sum(len(p["attachments"]) for p in payloads), "\n".join(texts + fields))


def _google_chat(make_channel, mock_http, caplog, message) -> Seen:
    mock_http.post(GCHAT_POST_URL)
    make_channel("google_chat").send(message)
    bodies = [call.request.body for call in mock_http.calls]
    cards = [json.loads(b)["cardsV2"][0]["card"] for b in bodies]
    listed = sum(1 for c in cards for s in c["sections"] if "decoratedText" in s["widgets"][0])
    return Seen(len(bodies), listed, "\n".join(b.decode() for b in bodies))


CHANNELS: dict[str, Callable[..., Seen]] = {"slack": _slack, "email": _email, "msteams": _msteams, "log": _log,
                                            "mattermost": _mattermost, "google_chat": _google_chat}


@pytest.mark.parametrize("kind", CHANNELS)
def test_21_alerts_over_20_go_out_as_one_summary(kind, make_channel, mock_http, caplog):
    seen = CHANNELS[kind](make_channel, mock_http, caplog, make_message(21, summary_over=20))
    assert (seen.messages, seen.listed) == (1, 20)
    assert "21 alerts" in seen.text or "21 in all" in seen.text
    assert "https://alerts.example.org" in seen.text
    assert "api-gw-20.internal" in seen.text and "api-gw-21.internal" not in seen.text


@pytest.mark.parametrize("kind", CHANNELS)
def test_20_alerts_are_all_listed(kind, make_channel, mock_http, caplog):
    seen = CHANNELS[kind](make_channel, mock_http, caplog, make_message(20, summary_over=20))
    assert (seen.messages, seen.listed) == (1, 20)
    assert "more" not in seen.text.replace("for more than", "")


@pytest.mark.parametrize("kind", CHANNELS)
def test_a_summary_without_a_receiver_url_still_says_how_many(kind, make_channel, mock_http, caplog):
    seen = CHANNELS[kind](make_channel, mock_http, caplog, make_message(30, summary_over=5, receiver_url=None))
    assert (seen.messages, seen.listed) == (1, 5)
    assert "30 alerts" in seen.text or "30 in all" in seen.text
