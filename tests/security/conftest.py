"""What the security tests share: one token per role, an app that requires them, and the hypothesis settings.

Hypothesis profiles are registered here but applied per test (`HYPOTHESIS`), never loaded globally, so they do
not change other suites. `HYPOTHESIS_PROFILE=security-deep` runs many more examples locally.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from prometheus_client import CollectorRegistry

from receiver.app import create_app

from ..support.fixtures import TOKEN

TOKENS = {"webhook": TOKEN, "read": "read-token-0123", "write": "write-token-89ab", "admin": "admin-token-4567"}
PD_SECRET = "pd-webhook-secret-123"
TWILIO_TOKEN = "twilio-auth-token-123"
SLACK_SECRET = "slack-signing-secret-123"
SLACK_BOT_TOKEN = "xoxb-slack-bot-token-123"
TELEGRAM_SECRET = "telegram-webhook-secret-123"
TELEGRAM_BOT_TOKEN = "123456:telegram-bot-token-0123456789"

# The app and database are built once per test, not per example: the checks compare row counts around each
# example, so the state examples leave behind does not matter. CI runs the same examples every time (a red build
# is then the change's doing, not the dice's); the deep profile explores at random.
_COMMON = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                      HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("security-ci", max_examples=40, derandomize=True, **_COMMON)
settings.register_profile("security-deep", max_examples=1000, derandomize=False, **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "")
PROFILE = PROFILE if PROFILE in ("security-ci", "security-deep") else "security-ci"
HYPOTHESIS = settings.get_profile(PROFILE)
# schemathesis runs every operation of the API: fewer examples each.
SCHEMATHESIS_EXAMPLES = {"security-ci": 12, "security-deep": 150}[PROFILE]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_settings() -> list[dict]:
    return [{"name": "alertmanager", "token": TOKENS["webhook"], "role": "webhook"},
            {"name": "analysts", "token": TOKENS["read"], "role": "read"},
            {"name": "oncall", "token": TOKENS["write"], "role": "write"},
            {"name": "admin", "token": TOKENS["admin"], "role": "admin"}]


@pytest.fixture
def secured_config(make_config):
    """Tokens for every role, a pagerduty channel that accepts signed webhooks, links in messages."""
    return make_config(
        auth={"tokens": token_settings()},
        channels={"chat": {"type": "log"},
                  "pd": {"type": "pagerduty", "routing_key": "r" * 32, "webhook_secret": PD_SECRET},
                  "slack-app": {"type": "slack_app", "bot_token": SLACK_BOT_TOKEN, "signing_secret": SLACK_SECRET,
                                "channel": "C0123ABC"},
                  "sms": {"type": "twilio_sms", "account_sid": "AC" + "0" * 32, "auth_token": TWILIO_TOKEN,
                          "from": "+15550000000", "to": ["+15551111111"]},
                  "telegram": {"type": "telegram", "bot_token": TELEGRAM_BOT_TOKEN, "chat_id": -100123,
                               "webhook_secret": TELEGRAM_SECRET}},
        routes=[{"levels": {"L1": ["chat", "pd"], "L2": ["chat"], "L3": ["chat"]}}],
        server={"public_url": "https://alerts.example.org/"})


@pytest.fixture
def secured_app(secured_config, clock):
    app = create_app(secured_config, clock=clock, registry=CollectorRegistry())
    yield app
    app.extensions["alert_receiver"].db.dispose()
