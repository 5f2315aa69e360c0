"""Slack: the exact webhook body, colours by level and kind, links, mrkdwn escaping, Slack's limits."""

from __future__ import annotations

import json

import pytest
from responses import matchers

from ..support.messages import make_alert, make_message
from .conftest import SLACK_URL

EXPECTED_ALERT_SECTION = (
    "*<http://prometheus.example.org/graph?g0.expr=cpu%3E0.9&g0.tab=1|HighCPUUsage>* · firing · L1"
    " · api-gw-1.internal:9100 · for 12m\n"
    "CPU usage above 90% on api-gw-1\n"
    "CPU usage has been above 90% for more than 5 minutes.\n"
    "`instance=api-gw-1.internal:9100, job=node, service=api-gateway, severity=critical, team=platform`\n"
    "<https://alerts.example.org/alerts/1|Details> · <https://alerts.example.org/a/token-1|Acknowledge>"
)


def test_the_exact_request(make_channel, mock_http):
    mock_http.post(SLACK_URL, body="ok", match=[
        matchers.header_matcher({"Content-Type": "application/json"}),
        matchers.json_params_matcher({
            "text": "[L1 FIRING] HighCPUUsage (1 alert): CPU usage above 90% on api-gw-1",
            "attachments": [{
                "color": "#d62728",
                "fallback": "[L1 FIRING] HighCPUUsage (1 alert): CPU usage above 90% on api-gw-1",
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn", "text": "*[L1 FIRING] HighCPUUsage (1 alert)*"}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": EXPECTED_ALERT_SECTION}},
                ],
            }],
            "username": "alerts",
            "icon_emoji": ":rotating_light:",
        }),
    ])
    make_channel("slack", username="alerts", icon_emoji=":rotating_light:").send(make_message())
    assert len(mock_http.calls) == 1


COLOURS = [
    ("firing", "L1", "#d62728"), ("escalated", "L1", "#d62728"), ("repeat", "L1", "#d62728"),
    ("firing", "L2", "#ff7f0e"), ("escalated", "L2", "#ff7f0e"),
    ("firing", "L3", "#1f77b4"),
    ("resolved", "L1", "#2ca02c"), ("resolved", "L3", "#2ca02c"),
    ("acknowledged", "L1", "#808080"),
]


@pytest.mark.parametrize("kind,level,colour", COLOURS, ids=[f"{k}-{lvl}" for k, lvl, _ in COLOURS])
def test_colour_by_level_and_kind(make_channel, kind, level, colour):
    payload = make_channel("slack").payload(make_message(kind=kind, level=level))
    assert payload["attachments"][0]["color"] == colour
    assert payload["text"].startswith(f"[{level} {kind.upper()}]")


def test_ack_link_only_for_a_firing_unacknowledged_alert(make_channel):
    alerts = (make_alert(1), make_alert(2, acked_by="alice"), make_alert(3, status="resolved", ends_at=make_alert().starts_at))
    sections = [b["text"]["text"] for b in make_channel("slack").payload(make_message(alerts))["attachments"][0]["blocks"]]
    assert "token-1|Acknowledge" in sections[1]
    assert "Acknowledge" not in sections[2] and "acked by alice" in sections[2]
    assert "Acknowledge" not in sections[3] and "resolved after 0s" in sections[3]


def test_text_is_mrkdwn_escaped(make_channel):
    alert = make_alert(labels={"alertname": "A<b>&", "severity": "critical", "instance": "<!channel>"},
                       annotations={"summary": "<@U123> look & see"})
    section = make_channel("slack").payload(make_message((alert,)))["attachments"][0]["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt;" in section and "&lt;@U123&gt; look &amp; see" in section
    assert "<!channel>" not in section and "<@U123>" not in section


def test_section_text_is_cut_to_slacks_limit(make_channel):
    alert = make_alert(annotations={"summary": "s" * 2000, "description": "d" * 20_000},
                       labels={"alertname": "Long", "severity": "critical", "x": "v" * 10_000})
    payload = make_channel("slack").payload(make_message((alert,)))
    texts = [b["text"]["text"] for b in payload["attachments"][0]["blocks"]]
    assert all(len(t) <= 3000 for t in texts)
    assert len(payload["text"]) <= 3000


def test_at_most_50_blocks(make_channel):
    message = make_message(120, summary_over=100)
    blocks = make_channel("slack").payload(message)["attachments"][0]["blocks"]
    assert len(blocks) == 50
    assert blocks[-1]["type"] == "context" and "72 more alerts (120 in all)" in blocks[-1]["elements"][0]["text"]


def test_rate_limit_from_settings(make_channel):
    assert (make_channel("slack").rate_limit.count, make_channel("slack").rate_limit.per) == (1.0, 1.0)
    assert make_channel("slack", rate_limit_per_second=0.5).rate_limit.count == 0.5


def test_a_genuine_unicode_capture_is_sent_as_utf8_json(make_channel, mock_http):
    from ..support.messages import message_from_capture

    mock_http.post(SLACK_URL, body="ok")
    make_channel("slack").send(message_from_capture("f_unicode_special_chars"))
    body = json.loads(mock_http.calls[0].request.body)
    section = body["attachments"][0]["blocks"][1]["text"]["text"]
    assert "db-01.例え.jp:9100" in section and "日本語 Ελληνικά العربية עברית 🙂👍🏽" in section
    assert "html: &lt;script&gt;alert('x')&lt;/script&gt; &amp; entities" in section
