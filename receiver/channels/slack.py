"""The `slack` channel: Slack incoming webhooks (one URL per Slack channel).

One message per notification: `text` (the preview, `slack/text.j2`) and one attachment coloured by level
holding a section for the headline (`slack/title.j2`) and one per listed alert (`slack/alert.j2`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import Field

from receiver.channels.chat import ChatSettings
from receiver.channels.base import Channel, RateLimit, post
from receiver.channels.markup import mrkdwn
from receiver.channels.text import cut, minimal_alert_line
from receiver.domain import Message
from receiver.fields import HttpsSecretUrl, Number, PositiveDuration

# https://api.slack.com/reference/block-kit/blocks#section: a section's text is at most 3,000 characters,
# and a message holds at most 50 blocks.
SECTION_TEXT_LIMIT = 3000
MAX_BLOCKS = 50
TEXT_LIMIT = 3000  # the top-level `text`; Slack cuts at 40,000, but a preview needs far less

COLOURS = {"L1": "#d62728", "L2": "#ff7f0e", "L3": "#1f77b4"}
RESOLVED_COLOUR = "#2ca02c"
ACKNOWLEDGED_COLOUR = "#808080"

# Slack's incoming webhooks answer 429 with Retry-After when rate limited and 4xx (invalid_payload,
# channel_not_found, action_prohibited, ...) for requests that will never succeed
# (https://api.slack.com/messaging/webhooks#handling_errors): no extra retryable codes.
RETRYABLE_CODES: tuple[int, ...] = ()

_MEMBER_ID = re.compile(r"[UW][A-Z0-9]+")  # a Slack member ID, as config/schedules.py requires of slack_user


class SlackSettings(ChatSettings):
    type: Literal["slack"]
    webhook_url: HttpsSecretUrl
    username: str | None = None
    icon_emoji: str | None = None
    timeout: PositiveDuration = dt.timedelta(seconds=10)
    # Slack allows about one message per second per incoming webhook.
    rate_limit_per_second: Annotated[Number, Field(gt=0)] = 1.0


def colour_of(message: Message) -> str:
    if message.kind == "resolved":
        return RESOLVED_COLOUR
    if message.kind == "acknowledged":
        return ACKNOWLEDGED_COLOUR
    return COLOURS.get(message.level, COLOURS["L3"])


def mention(message: Message) -> str:
    """`<@U01ALICE> ` for the person a route pages through this channel (Slack notifies them), `alice: ` for one
    without a Slack ID, "" for a message to the channel alone. Only a well-formed ID goes into `<@…>`: anything
    else is escaped text and can mention no one."""
    person = message.recipient
    if person is None:
        return ""
    if person.slack_user and _MEMBER_ID.fullmatch(person.slack_user):
        return f"<@{person.slack_user}> "
    return mrkdwn(person.name) + ": "


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_TEXT_LIMIT)}}


class SlackChannel(Channel):
    type = "slack"
    settings: SlackSettings

    @property
    def rate_limit(self) -> RateLimit:
        return RateLimit(count=self.settings.rate_limit_per_second, per=1.0)

    def payload(self, message: Message) -> dict[str, Any]:
        # slack/text.j2 is plain text, but Slack reads `text` and `fallback` as mrkdwn: escaped here, so that
        # an alertname of <!channel> cannot ping anyone, whatever an override template does.
        text = mention(message) + mrkdwn(self.renderer.render_message("slack/text.j2", message))
        blocks = [_section(self.renderer.render_message("slack/title.j2", message) or text)]
        shown = message.shown
        room = MAX_BLOCKS - 2  # the headline, and a note when alerts do not fit
        for alert in shown[:room]:
            section = self.renderer.render_alert("slack/alert.j2", message, alert)
            blocks.append(_section(section or mrkdwn(minimal_alert_line(alert))))  # Slack rejects an empty section
        if len(shown) > room:
            more = len(message.alerts) - room
            blocks.append({"type": "context", "elements": [
                {"type": "mrkdwn", "text": f"… and {more} more alerts ({len(message.alerts)} in all)"}]})
        payload: dict[str, Any] = {
            "text": cut(text, TEXT_LIMIT),
            "attachments": [{"color": colour_of(message), "fallback": cut(text, TEXT_LIMIT), "blocks": blocks}],
        }
        if self.settings.username:
            payload["username"] = self.settings.username
        if self.settings.icon_emoji:
            payload["icon_emoji"] = self.settings.icon_emoji
        return payload

    def send(self, message: Message) -> None:
        post(self.http, self.settings.webhook_url.reveal(), what="slack webhook", timeout=self.settings.timeout,
             retryable_codes=RETRYABLE_CODES, json=self.payload(message))
