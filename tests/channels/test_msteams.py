"""Microsoft Teams: the Adaptive Card envelope, colours, the 28 KB limit, and legacy connectors' 200 failures."""

from __future__ import annotations

import json

import pytest

from receiver.channels.base import DeliveryError

from ..support.messages import make_alert, make_message
from .conftest import TEAMS_URL


def card_of(body: bytes) -> dict:
    envelope = json.loads(body)
    assert envelope["type"] == "message"
    [attachment] = envelope["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    return attachment["content"]


def test_the_exact_request(make_channel, mock_http):
    mock_http.post(TEAMS_URL, status=202)
    make_channel("msteams").send(make_message())
    request = mock_http.calls[0].request
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(request.body) == {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": None,
        "content": {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "msteams": {"width": "Full"},
            "body": [
                {"type": "TextBlock", "wrap": True, "weight": "Bolder", "size": "Medium", "color": "Attention",
                 "text": "\\[L1 FIRING\\] HighCPUUsage \\(1 alert\\)"},  # markdown: shown as written
                {"type": "Container", "style": "attention", "separator": True, "items": [{
                    "type": "TextBlock", "wrap": True,
                    "text": "**HighCPUUsage** · firing · L1 · api-gw-1.internal:9100 · for 12m\n\n"
                            "CPU usage above 90% on api-gw-1\n\n"
                            "CPU usage has been above 90% for more than 5 minutes.\n\n"
                            "instance=api-gw-1.internal:9100, job=node, service=api-gateway, severity=critical, "
                            "team=platform\n\n"
                            "[Source](http://prometheus.example.org/graph?g0.expr=cpu%3E0.9&g0.tab=1) · "
                            "[Details](https://alerts.example.org/alerts/1) · "
                            "[Acknowledge](https://alerts.example.org/a/token-1)"}]},
            ],
            "actions": [{"type": "Action.OpenUrl", "title": "Open alert-receiver", "url": "https://alerts.example.org"}],
        },
    }]}


COLOURS = [("firing", "L1", "Attention"), ("firing", "L2", "Warning"), ("repeat", "L3", "Accent"),
           ("resolved", "L1", "Good")]


@pytest.mark.parametrize("kind,level,colour", COLOURS, ids=[f"{k}-{lvl}" for k, lvl, _ in COLOURS])
def test_heading_colour(make_channel, kind, level, colour):
    card = card_of(make_channel("msteams").payload(make_message(kind=kind, level=level)))
    assert card["body"][0]["color"] == colour


def test_a_large_group_is_cut_under_28_kb_saying_how_many_were_left_out(make_channel):
    alerts = tuple(make_alert(i, annotations={"summary": f"disk {i}", "description": "d" * 3000}) for i in range(1, 21))
    body = make_channel("msteams").payload(make_message(alerts))
    assert len(body) <= 28_000
    card = card_of(body)
    listed = [b for b in card["body"] if b["type"] == "Container"]
    assert 5 <= len(listed) < 20
    note = card["body"][-1]["text"]
    assert note.startswith(f"… and {20 - len(listed)} more alerts not shown (20 in all)")
    assert "[alert-receiver](https://alerts.example.org)" in note


def test_one_enormous_alert_still_fits(make_channel):
    alert = make_alert(annotations={"summary": "s" * 50_000, "description": "d" * 50_000},
                       labels={"alertname": "Big", "severity": "critical", "blob": "b" * 50_000})
    body = make_channel("msteams").payload(make_message((alert,)))
    assert len(body) <= 28_000
    assert len([b for b in card_of(body)["body"] if b["type"] == "Container"]) == 1


def test_non_ascii_is_sent_as_utf8_and_counted_in_bytes(make_channel):
    alerts = tuple(make_alert(i, annotations={"summary": "🚀" * 900}) for i in range(1, 21))
    body = make_channel("msteams").payload(make_message(alerts))
    assert len(body) <= 28_000 and "🚀".encode() in body


LEGACY = [("Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 "
           "with ContextId tcid=0", True),
          ("Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 400", False),
          ("Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 502", True)]


@pytest.mark.parametrize("text,retryable", LEGACY, ids=["429", "400", "502"])
def test_a_legacy_connector_failure_inside_a_200(make_channel, mock_http, text, retryable):
    mock_http.post(TEAMS_URL, status=200, body=text)
    with pytest.raises(DeliveryError) as info:
        make_channel("msteams").send(make_message())
    assert info.value.retryable is retryable


def test_a_legacy_connector_success(make_channel, mock_http):
    """An Office 365 connector answers 200 with the body "1" on success: no error, and the card went out once."""
    mock_http.post(TEAMS_URL, status=200, body="1")
    make_channel("msteams").send(make_message())
    [call] = mock_http.calls
    assert call.request.url == TEAMS_URL
    assert card_of(call.request.body)["type"] == "AdaptiveCard"
