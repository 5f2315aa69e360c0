"""What `check-config` warns about for two-way chat (issue #18): settings that load, but leave a button or an SMS
reply unable to reach the receiver. Warnings, not errors: a channel that only posts is a valid choice."""

from __future__ import annotations

from typing import Any


def chat_warnings(config: Any) -> list[str]:
    """One line per channel whose replies cannot work, naming the channel, the key and the fix."""
    found = []
    for name, settings in config.channels.items():
        kind = settings.type
        if kind == "slack_app" and settings.signing_secret is None:
            found.append(f"channels.{name}: no signing_secret, so its Acknowledge/Resolve/Escalate buttons do nothing "
                         "— fix: copy the app's Signing Secret (Basic Information) into signing_secret and set the "
                         "app's Interactivity Request URL to <server.public_url>/integrations/slack/interactions")
        elif kind == "telegram" and settings.webhook_secret is None:
            found.append(f"channels.{name}: no webhook_secret, so its buttons do nothing — fix: set webhook_secret "
                         "and call setWebhook with url=<server.public_url>/integrations/telegram and that "
                         "secret_token")
        elif kind == "twilio_sms" and settings.reply_ack and config.server.public_url is None:
            found.append(f"channels.{name}: reply_ack is on but server.public_url is not set, so its SMS carry no "
                         "reply code (Twilio signs the public URL it calls) — fix: set server.public_url, or "
                         "reply_ack: false")
    return found
