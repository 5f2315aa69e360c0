"""Channels under test: a renderer that records template errors, a requests session whose HTTP is answered by
`responses` (no request leaves the process), and `make_channel(type, **settings)`."""

from __future__ import annotations

import pytest
import requests
import responses

from receiver.channels.registry import CHANNEL_CLASSES, SETTINGS_BY_TYPE
from receiver.render import Renderer

# Recognisable secrets: a test that finds one of these in an error or a log line has found a leak.
SLACK_URL = "https://hooks.slack.com/services/T000/B000/leak-slack-webhook-secret"
TEAMS_URL = "https://example.webhook.office.com/webhookb2/leak-teams-webhook-secret"
PD_KEY = "leak-pagerduty-routing-key-0123456"
TWILIO_SID = "AC0123456789abcdef"
TWILIO_TOKEN = "leak-twilio-auth-token"
HOOK_URL = "https://hooks.example.org/alerts"
HOOK_SECRET = "leak-hook-hmac-secret"
HOOK_AUTH = "Bearer leak-hook-bearer-token"
MATTERMOST_URL = "https://chat.example.org/hooks/leak-mm-hook-secret-0123456789"
GCHAT_KEY, GCHAT_TOKEN = "leak-gchat-key-0123456789", "leak-gchat-token-0123456789"
GCHAT_URL = f"https://chat.googleapis.com/v1/spaces/AAAA1234/messages?key={GCHAT_KEY}&token={GCHAT_TOKEN}"
# What the channel POSTs to: the webhook URL with the threading option Google documents for replies.
GCHAT_POST_URL = GCHAT_URL + "&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
TELEGRAM_TOKEN = "123456789:leak-telegram-bot-token-AAbbCCdd"
TELEGRAM_WEBHOOK_SECRET = "leak-telegram-webhook-secret-0123"
SLACK_BOT_TOKEN = "xoxb-leak-slack-bot-token-0123456789"
SLACK_SIGNING_SECRET = "leak-slack-signing-secret-0123456789"

SETTINGS: dict[str, dict] = {
    "log": {"type": "log"},
    "slack": {"type": "slack", "webhook_url": SLACK_URL},
    "pagerduty": {"type": "pagerduty", "routing_key": PD_KEY},
    "twilio_sms": {"type": "twilio_sms", "account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN,
                   "from": "+15550000000", "to": ["+15551111111"]},
    "msteams": {"type": "msteams", "webhook_url": TEAMS_URL},
    "webhook": {"type": "webhook", "url": HOOK_URL, "hmac_secret": HOOK_SECRET,
                "headers": {"Authorization": HOOK_AUTH, "X-Team": "sre"}},
    "mattermost": {"type": "mattermost", "webhook_url": MATTERMOST_URL},
    "google_chat": {"type": "google_chat", "webhook_url": GCHAT_URL},
    "telegram": {"type": "telegram", "bot_token": TELEGRAM_TOKEN, "chat_id": -1001234567890,
                 "webhook_secret": TELEGRAM_WEBHOOK_SECRET},
    "slack_app": {"type": "slack_app", "bot_token": SLACK_BOT_TOKEN, "signing_secret": SLACK_SIGNING_SECRET,
                  "channel": "C0123ABC"},
}


class TemplateErrors(list):
    """on_error that records (template, exception) pairs."""

    def __call__(self, name: str, exc: Exception) -> None:
        self.append((name, exc))


@pytest.fixture
def template_errors():
    return TemplateErrors()


@pytest.fixture
def renderer(template_errors):
    return Renderer(on_error=template_errors)


@pytest.fixture
def mock_http():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


@pytest.fixture
def make_channel(renderer, http):
    def make(kind: str, name: str | None = None, **overrides):
        settings = SETTINGS_BY_TYPE[kind].model_validate({**SETTINGS.get(kind, {"type": kind}), **overrides})
        return CHANNEL_CLASSES[kind](name or f"{kind}-test", settings, renderer=renderer, http=http)

    return make
