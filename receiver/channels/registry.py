"""Every channel type, registered explicitly: one line per type, no entry-point discovery."""

from __future__ import annotations

from pydantic import BaseModel

from receiver.channels.email import EmailSettings
from receiver.channels.log import LogSettings
from receiver.channels.msteams import MsTeamsSettings
from receiver.channels.pagerduty import PagerDutySettings
from receiver.channels.slack import SlackSettings
from receiver.channels.twilio_sms import TwilioSmsSettings
from receiver.channels.webhook import WebhookSettings

SETTINGS_BY_TYPE: dict[str, type[BaseModel]] = {
    "log": LogSettings,
    "slack": SlackSettings,
    "email": EmailSettings,
    "pagerduty": PagerDutySettings,
    "twilio_sms": TwilioSmsSettings,
    "msteams": MsTeamsSettings,
    "webhook": WebhookSettings,
}
