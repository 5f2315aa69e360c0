"""A message that pages a person (Message.recipient, resolved by engine/paging.py): e-mail to their address through
a real SMTP server, SMS to their phone (Twilio answered by `responses`), a Slack mention of their member ID, and
their name only — never their address or phone — in the webhook, Teams, PagerDuty and log channels. A channel
without `to:` sends to people only."""

from __future__ import annotations

import json
import logging

import pytest
from responses import matchers

from receiver.channels.base import DeliveryError
from receiver.channels.registry import CHANNEL_CLASSES, SETTINGS_BY_TYPE
from receiver.domain import Recipient

from ..support.messages import make_message
from .conftest import SETTINGS, TWILIO_SID
from .test_email import smtp_server  # noqa: F401  (the real aiosmtpd server fixture)

ALICE = Recipient("alice", email="alice@example.org", phone="+4915550001", slack_user="U01ALICE", source="override")
TWILIO_URL = f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"


@pytest.fixture
def channel_without_to(renderer, http):
    def make(kind: str, **settings):
        values = {k: v for k, v in {**SETTINGS.get(kind, {"type": kind}), **settings}.items() if k != "to"}
        return CHANNEL_CLASSES[kind](f"{kind}-oncall", SETTINGS_BY_TYPE[kind].model_validate(values),
                                     renderer=renderer, http=http)

    return make


def test_email_goes_to_the_person_paged_instead_of_to(smtp_server, make_channel):  # noqa: F811
    collector, port = smtp_server()
    channel = make_channel("email", smtp_host="127.0.0.1", smtp_port=port, starttls=False, timeout="5s",
                           **{"from": "alerts@example.org", "to": ["team@example.org"]})
    channel.send(make_message(recipient=ALICE))
    channel.send(make_message())
    [(_, paged_rcpt, paged), (_, team_rcpt, team)] = collector.messages
    assert paged_rcpt == ["alice@example.org"] and paged["To"] == "alice@example.org"
    assert team_rcpt == ["team@example.org"] and team["To"] == "team@example.org"


def test_email_without_to_serves_people_only(smtp_server, channel_without_to):  # noqa: F811
    collector, port = smtp_server()
    channel = channel_without_to("email", smtp_host="127.0.0.1", smtp_port=port, starttls=False,
                                 **{"from": "alerts@example.org"})
    channel.send(make_message(recipient=ALICE))
    assert collector.messages[0][1] == ["alice@example.org"]
    with pytest.raises(DeliveryError) as info:
        channel.send(make_message())
    assert not info.value.retryable and "has no `to:`" in info.value.reason
    with pytest.raises(DeliveryError):
        channel.send(make_message(recipient=Recipient("bob", phone="+4915550002")))
    assert len(collector.messages) == 1


def test_sms_goes_to_the_persons_phone(channel_without_to, mock_http):
    mock_http.post(TWILIO_URL, status=201, json={"sid": "SM1"}, match=[
        matchers.urlencoded_params_matcher({"To": "+4915550001", "From": "+15550000000"}, allow_blank=False,
                                           strict_match=False)])
    channel_without_to("twilio_sms").send(make_message(recipient=ALICE))
    assert len(mock_http.calls) == 1
    with pytest.raises(DeliveryError) as info:
        channel_without_to("twilio_sms").send(make_message())
    assert not info.value.retryable and len(mock_http.calls) == 1


def test_sms_with_to_still_texts_only_the_person_paged(make_channel, mock_http):
    mock_http.post(TWILIO_URL, status=201, json={"sid": "SM1"})
    make_channel("twilio_sms", to=["+15551111111", "+15552222222"]).send(make_message(recipient=ALICE))
    [call] = mock_http.calls  # one request: not one per `to` number
    assert "To=%2B4915550001" in call.request.body


def test_slack_mentions_the_member_and_nothing_else_can_mention(make_channel):
    slack = make_channel("slack")
    text = slack.payload(make_message(recipient=ALICE))["text"]
    assert text.startswith("<@U01ALICE> [L1 FIRING] HighCPUUsage")
    assert slack.payload(make_message())["text"].startswith("[L1 FIRING]")
    # A recipient built elsewhere with a malformed ID (config rejects it) is shown as escaped text, never a mention.
    hostile = Recipient("<!channel>", slack_user="<!here>")
    text = slack.payload(make_message(recipient=hostile))["text"]
    assert text.startswith("&lt;!channel&gt;: ") and "<!" not in text


def test_generic_channels_carry_the_name_only(make_channel, caplog):
    message = make_message(recipient=ALICE)
    doc = json.loads(make_channel("webhook").request(message)[0])
    assert doc["recipient"] == {"name": "alice", "source": "override"}
    assert "recipient" not in json.loads(make_channel("webhook").request(make_message())[0])
    pd = make_channel("pagerduty").event(message, message.alerts[0])
    assert pd["payload"]["custom_details"]["recipient"] == "alice"
    card = json.loads(make_channel("msteams").payload(message))
    assert card["attachments"][0]["content"]["body"][0]["text"].endswith(" — for alice")
    caplog.set_level(logging.INFO, logger="receiver.channels.log")
    make_channel("log").send(message)
    assert caplog.records[-1].recipient == "alice"
    for sent in (json.dumps(doc), json.dumps(pd), json.dumps(card)):
        assert "alice@example.org" not in sent and "+4915550001" not in sent and "U01ALICE" not in sent
