"""Twilio SMS: one form POST per number with basic auth, a body under 160 characters that always keeps its
"Reply ACK <id>" code, levels, partial failure."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs

import pytest
from responses import matchers

from receiver.channels.base import DeliveryError
from receiver.channels.twilio_sms import fit_body

from ..support.messages import make_alert, make_message
from .conftest import TWILIO_SID, TWILIO_TOKEN

URL = f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
AUTH = "Basic " + base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
NUMBERS = ["+15551111111", "+15552222222"]


def test_one_exact_request_per_number(make_channel, mock_http):
    body = "L1 FIRING: HighCPUUsage on api-gw-1.internal:9100 https://alerts.example.org/alerts/1 Reply ACK 7"
    for number in NUMBERS:
        mock_http.post(URL, status=201, json={"sid": "SM1"}, match=[
            matchers.header_matcher({"Authorization": AUTH}),
            matchers.urlencoded_params_matcher({"To": number, "From": "+15550000000", "Body": body}),
        ])
    make_channel("twilio_sms", to=NUMBERS).send(make_message())
    assert len(mock_http.calls) == 2


BODIES = [
    ("one alert with its link", make_message(),
     "L1 FIRING: HighCPUUsage on api-gw-1.internal:9100 https://alerts.example.org/alerts/1 Reply ACK 7"),
    ("a group links the receiver", make_message(3, kind="escalated", notification_id=42),
     "L1 ESCALATED 3 alerts: HighCPUUsage on api-gw-1.internal:9100 and 2 more https://alerts.example.org"
     " Reply ACK 42"),
    ("a group without its link", make_message((make_alert(url=None), make_alert(2, url=None))),
     "L1 FIRING 2 alerts: HighCPUUsage on api-gw-1.internal:9100 and 1 more https://alerts.example.org Reply ACK 7"),
    # No server.public_url: no link, and no code (the reply could not reach the receiver).
    ("no link known", make_message((make_alert(url=None),), receiver_url=None),
     "L1 FIRING: HighCPUUsage on api-gw-1.internal:9100"),
    ("repeat", make_message(kind="repeat"),
     "L1 REPEAT: HighCPUUsage on api-gw-1.internal:9100 https://alerts.example.org/alerts/1 Reply ACK 7"),
    # Nothing left to acknowledge: no code.
    ("resolved", make_message(kind="resolved"),
     "L1 RESOLVED: HighCPUUsage on api-gw-1.internal:9100 https://alerts.example.org/alerts/1"),
    ("acknowledged", make_message(kind="acknowledged"),
     "L1 ACKNOWLEDGED: HighCPUUsage on api-gw-1.internal:9100 https://alerts.example.org/alerts/1"),
]


@pytest.mark.parametrize("message,expected", [(m, e) for _, m, e in BODIES], ids=[i for i, _, _ in BODIES])
def test_body(make_channel, message, expected):
    assert make_channel("twilio_sms").body(message) == expected


def test_a_long_body_is_cut_under_160_and_the_link_left_out_but_never_the_code(make_channel):
    alert = make_alert(labels={"alertname": "A" * 300, "severity": "critical", "instance": "i" * 100})
    body = make_channel("twilio_sms").body(make_message((alert,), notification_id=9_223_372_036_854_775_807))
    assert len(body) < 160 and body.endswith("… Reply ACK 9223372036854775807") and "https://" not in body
    without = make_channel("twilio_sms", reply_ack=False).body(make_message((alert,)))
    assert len(without) < 160 and without.endswith("…")


@pytest.mark.parametrize("name_length", range(40, 165, 4))
def test_the_link_goes_before_the_code(make_channel, name_length):
    alert = make_alert(labels={"alertname": "A" * name_length, "severity": "critical"})
    body = make_channel("twilio_sms").body(make_message((alert,), notification_id=4242))
    link, code = "https://alerts.example.org/alerts/1", "Reply ACK 4242"
    assert len(body) < 160 and body.endswith(" " + code)
    whole = f"L1 FIRING: {'A' * name_length} {link} {code}"
    assert body == whole if len(whole) < 160 else link not in body


@pytest.mark.parametrize("kind", ["firing", "escalated", "repeat", "sla_ack_breached", "sla_resolve_breached"])
def test_every_paging_kind_carries_the_code_unless_switched_off(make_channel, kind):
    assert make_channel("twilio_sms").body(make_message(kind=kind)).endswith(" Reply ACK 7")
    assert "Reply ACK" not in make_channel("twilio_sms", reply_ack=False).body(make_message(kind=kind))


def test_no_code_when_none_of_its_alerts_still_fires(make_channel):
    message = make_message((make_alert(status="resolved"),), kind="repeat")
    assert "Reply ACK" not in make_channel("twilio_sms").body(message)


@pytest.mark.parametrize("text_length", range(100, 165, 4))
def test_fit_body_never_reaches_160(text_length):
    link = "https://alerts.example.org/alerts/123"
    body = fit_body("x" * text_length, link)
    assert len(body) < 160
    assert body.endswith(link) == (text_length + 1 + len(link) < 160)


LEVELS = [
    ({}, {"L1"}),
    ({"levels": ["L1", "L2"]}, {"L1", "L2"}),
    ({"levels": ["L3"]}, {"L3"}),
]


@pytest.mark.parametrize("settings,accepted", LEVELS, ids=["default", "L1+L2", "L3"])
def test_accepts_only_its_levels(make_channel, settings, accepted):
    channel = make_channel("twilio_sms", **settings)
    assert {lvl for lvl in ("L1", "L2", "L3") if channel.accepts_level(lvl)} == accepted


def test_levels_must_not_be_empty(make_channel):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        make_channel("twilio_sms", levels=[])


def _to(number: str):
    def match(request):
        to = parse_qs(request.body)["To"]
        return to == [number], f"To is {to}"

    return match


PARTIAL = [
    ("one invalid number: sent, no retry can help it", [201, 400], None),
    ("one server error: retried", [201, 500], True),
    ("all invalid: permanent", [400, 400], False),
    ("invalid and throttled: retried", [400, 429], True),
]


@pytest.mark.parametrize("statuses,retryable", [(s, r) for _, s, r in PARTIAL], ids=[i for i, _, _ in PARTIAL])
def test_partial_failure(make_channel, mock_http, statuses, retryable):
    for number, status in zip(NUMBERS, statuses):
        mock_http.post(URL, status=status, match=[_to(number)])
    channel = make_channel("twilio_sms", to=NUMBERS)
    if retryable is None:
        channel.send(make_message())
    else:
        with pytest.raises(DeliveryError) as info:
            channel.send(make_message())
        assert info.value.retryable is retryable
    assert len(mock_http.calls) == 2  # every number is tried
