"""Every channel type, registered explicitly: one line per type, no entry-point discovery."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from pydantic import BaseModel

from receiver.channels.base import Channel, Renderer
from receiver.channels.email import EmailChannel, EmailSettings
from receiver.channels.google_chat import GoogleChatChannel, GoogleChatSettings
from receiver.channels.log import LogChannel, LogSettings
from receiver.channels.mattermost import MattermostChannel, MattermostSettings
from receiver.channels.msteams import MsTeamsChannel, MsTeamsSettings
from receiver.channels.pagerduty import PagerDutyChannel, PagerDutySettings
from receiver.channels.slack import SlackChannel, SlackSettings
from receiver.channels.slack_app import SlackAppChannel, SlackAppSettings
from receiver.channels.telegram import TelegramChannel, TelegramSettings
from receiver.channels.twilio_sms import TwilioSmsChannel, TwilioSmsSettings
from receiver.channels.webhook import WebhookChannel, WebhookSettings

if TYPE_CHECKING:
    import requests

SETTINGS_BY_TYPE: dict[str, type[BaseModel]] = {
    "log": LogSettings,
    "slack": SlackSettings,
    "email": EmailSettings,
    "pagerduty": PagerDutySettings,
    "twilio_sms": TwilioSmsSettings,
    "msteams": MsTeamsSettings,
    "webhook": WebhookSettings,
    "mattermost": MattermostSettings,
    "google_chat": GoogleChatSettings,
    "slack_app": SlackAppSettings,
    "telegram": TelegramSettings,
}

CHANNEL_CLASSES: dict[str, type[Channel]] = {
    "log": LogChannel,
    "slack": SlackChannel,
    "email": EmailChannel,
    "pagerduty": PagerDutyChannel,
    "twilio_sms": TwilioSmsChannel,
    "msteams": MsTeamsChannel,
    "webhook": WebhookChannel,
    "mattermost": MattermostChannel,
    "google_chat": GoogleChatChannel,
    "slack_app": SlackAppChannel,
    "telegram": TelegramChannel,
}


def build_channels(channels: Mapping[str, BaseModel], *, renderer: Renderer,
                   http: "requests.Session") -> dict[str, Channel]:
    """One Channel per configured channel, by name (`channels`: the config's `channels` mapping of name to settings,
    each with its `type`); they share the renderer and the HTTP session. It takes the settings, not the Config, so
    that channels never import config (config builds on the settings models here)."""
    return {name: CHANNEL_CLASSES[settings.type](name, settings, renderer=renderer, http=http)
            for name, settings in channels.items()}
