"""The `mattermost` channel: Mattermost incoming webhooks, one Slack-style attachment per listed alert.

Mattermost takes `text`, `channel`, `username`, `icon_url` and `attachments` (fallback, color, title,
title_link, text, fields) (https://developers.mattermost.com/integrate/webhooks/incoming/,
https://developers.mattermost.com/integrate/reference/message-attachments/). Text is built here rather than in
templates: Mattermost reads Markdown, and every alert-controlled string goes through `mattermost_md` once.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from receiver.channels.chat import ChatSettings
from receiver.channels.base import Channel, RateLimit, post
from receiver.channels.markup import http_url, plain
from receiver.channels.slack import COLOURS, RESOLVED_COLOUR  # the same colours: people read both side by side
from receiver.channels.text import cut, headline, human_duration, source_of
from receiver.domain import Message, MessageAlert
from receiver.fields import HttpsSecretUrl, Number, PositiveDuration, check_url

# Mattermost's default post size limit is 16,383 characters (MaxPostSize); attachments count towards it, so each
# part is kept well under it and at most MAX_ATTACHMENTS alerts are listed.
TEXT_LIMIT = 2000
ATTACHMENT_TEXT_LIMIT = 1500
FIELD_LIMIT = 300
MAX_ATTACHMENTS = 20

# Mattermost answers 4xx for a bad payload or a disabled hook and 429/5xx when it should be retried: the shared
# classification covers it, no extra retryable codes.
RETRYABLE_CODES: tuple[int, ...] = ()

# CommonMark metacharacters (emphasis, links, code, headings, tables, autolinks, the escape itself), escaped
# with a backslash as Mattermost's Markdown allows.
_MD_SPECIAL = re.compile(r"([\\*_~`\[\]()<>#|!])")
# List and quote markers only act at the start of a line.
_MD_LINE_START = re.compile(r"^(\s*)(?:([-+])|(\d+)\.)", re.M)
# `@channel`, `@all`, `@here` and `@name` notify people; a backslash does not stop Mattermost from reading a
# mention, so a zero-width joiner goes between `@` and the name: it still reads as written, and pings no one.
_MENTION = re.compile(r"@(?=\w)")
_ZWJ = "\u2060"


class MattermostSettings(ChatSettings):
    type: Literal["mattermost"]
    webhook_url: HttpsSecretUrl
    channel: str | None = None  # overrides the webhook's channel, if the webhook allows it
    username: str | None = None
    icon_url: str | None = None
    timeout: PositiveDuration = dt.timedelta(seconds=10)
    # Mattermost rate-limits per IP (10 per second by default when enabled): one per second leaves room for others.
    rate_limit_per_second: Annotated[Number, Field(gt=0)] = 1.0

    @field_validator("icon_url")
    @classmethod
    def _icon(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)


def mattermost_md(text: object) -> str:
    """Mattermost Markdown text that shows as written: metacharacters and line-start markers backslash-escaped,
    mentions defused."""
    text = _MD_SPECIAL.sub(r"\\\1", plain(text))
    text = _MD_LINE_START.sub(lambda m: m.group(1) + (f"\\{m.group(2)}" if m.group(2) else f"{m.group(3)}\\."), text)
    return _MENTION.sub("@" + _ZWJ, text)


def _attachment(alert: MessageAlert) -> dict[str, Any]:
    name = mattermost_md(alert.alertname)
    state = f"resolved after {human_duration(alert.ends_at - alert.starts_at)}" if (
        alert.status == "resolved" and alert.ends_at) else alert.status
    lines = []
    if alert.summary != alert.alertname:
        lines.append(mattermost_md(cut(alert.summary, 500)))
    if alert.annotations.get("description"):
        lines.append(mattermost_md(cut(alert.annotations["description"], 1000)))
    links = [f"[{label}]({url})" for label, url in (
        ("Details", http_url(alert.url, "()")),
        ("Acknowledge", http_url(alert.ack_url, "()") if alert.status == "firing" and not alert.acked_by else ""),
        ("Runbook", http_url(alert.annotations.get("runbook_url"), "()"))) if url]
    if links:
        lines.append(" · ".join(links))
    fields = [{"short": True, "title": "Level", "value": alert.level},
              {"short": True, "title": "Status", "value": mattermost_md(state)}]
    if source_of(alert):
        fields.append({"short": True, "title": "Source", "value": mattermost_md(cut(source_of(alert), FIELD_LIMIT))})
    if alert.acked_by:
        fields.append({"short": True, "title": "Acknowledged by", "value": mattermost_md(alert.acked_by)})
    attachment: dict[str, Any] = {
        # Plain text (notifications, IRC bridges): no Markdown to escape, but a mention would still notify.
        "fallback": _MENTION.sub("@" + _ZWJ, cut(plain(f"{alert.alertname} {alert.status}: {alert.summary}"), 300)),
        "color": RESOLVED_COLOUR if alert.status == "resolved" else COLOURS.get(alert.level, COLOURS["L3"]),
        "title": cut(name, FIELD_LIMIT),
        "text": cut("\n".join(lines), ATTACHMENT_TEXT_LIMIT),
        "fields": fields,
    }
    source = http_url(alert.generator_url)
    if source:
        attachment["title_link"] = source
    return attachment


class MattermostChannel(Channel):
    type = "mattermost"
    settings: MattermostSettings

    @property
    def rate_limit(self) -> RateLimit:
        return RateLimit(count=self.settings.rate_limit_per_second, per=1.0)

    def payload(self, message: Message) -> dict[str, Any]:
        text = "**" + mattermost_md(headline(message)) + "**"
        if message.recipient is not None:  # the person paged: by name only, escaped, so no mention is made
            text += " — for " + mattermost_md(message.recipient.name)
        shown = message.shown[:MAX_ATTACHMENTS]
        left_out = len(message.alerts) - len(shown)
        if left_out:
            text += (f"\n{len(message.alerts)} alerts ({message.firing_count} firing, "
                     f"{len(message.alerts) - message.firing_count} resolved); the first {len(shown)} are listed")
            if http_url(message.receiver_url, "()"):
                text += f", all of them in [alert-receiver]({http_url(message.receiver_url, '()')})"
            text += "."
        payload: dict[str, Any] = {"text": cut(text, TEXT_LIMIT), "attachments": [_attachment(a) for a in shown]}
        for key in ("channel", "username", "icon_url"):
            if getattr(self.settings, key):
                payload[key] = getattr(self.settings, key)
        return payload

    def send(self, message: Message) -> None:
        post(self.http, self.settings.webhook_url.reveal(), what="mattermost webhook", timeout=self.settings.timeout,
             retryable_codes=RETRYABLE_CODES, json=self.payload(message))
