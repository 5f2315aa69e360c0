"""An SLA breach notice (`sla_ack_breached`, `sla_resolve_breached`: engine/sla_breaches.py to `sla.notify`) goes
through every channel as one message that says which target was missed, with no template falling back."""

from __future__ import annotations

import json
import logging

import pytest

from receiver.channels.text import headline

from ..support.messages import make_message
from .conftest import GCHAT_POST_URL, HOOK_URL, MATTERMOST_URL, SLACK_URL, TEAMS_URL, TWILIO_SID

KINDS = {"sla_ack_breached": "ACK SLA BREACHED", "sla_resolve_breached": "RESOLVE SLA BREACHED"}
HTTP = {"slack": SLACK_URL, "msteams": TEAMS_URL, "webhook": HOOK_URL, "mattermost": MATTERMOST_URL,
        "google_chat": GCHAT_POST_URL,
        "pagerduty": "https://events.pagerduty.com/v2/enqueue",
        "twilio_sms": f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("channel_type", sorted(HTTP))
def test_every_http_channel_sends_one_notice(channel_type, kind, make_channel, mock_http, template_errors):
    mock_http.post(HTTP[channel_type], status={"pagerduty": 202, "twilio_sms": 201}.get(channel_type, 200))
    message = make_message(1, kind=kind, level="L2")
    make_channel(channel_type).send(message)
    assert len(mock_http.calls) == 1 and template_errors == []
    body = mock_http.calls[0].request.body
    text = body.decode() if isinstance(body, bytes) else body
    if channel_type == "pagerduty":  # folded into the occurrence's incident: a trigger with its dedup_key
        event = json.loads(text)
        assert event["event_action"] == "trigger" and event["payload"]["custom_details"]["kind"] == kind
    elif channel_type == "webhook":
        assert json.loads(text)["kind"] == kind
    elif channel_type == "twilio_sms":
        assert kind.upper() in text.replace("%20", " ").replace("+", " ")
    else:
        assert KINDS[kind] in text


@pytest.mark.parametrize("kind", KINDS)
def test_email_and_log_say_which_target(kind, make_channel, template_errors, caplog):
    message = make_message(1, kind=kind, level="L1")
    assert headline(message) == f"[L1 {KINDS[kind]}] HighCPUUsage (1 alert)"
    email = make_channel("email", to=["sre@example.org"], smtp_host="127.0.0.1", **{"from": "ar@example.org"})
    built = email.build(message)
    assert KINDS[kind] in built["Subject"]
    with caplog.at_level(logging.INFO):
        make_channel("log").send(message)
    assert KINDS[kind] in caplog.text
    assert template_errors == []
