"""The `google_chat` channel: Google Chat incoming webhooks, one card (`cardsV2`) per message, threaded by group.

A webhook message is a `spaces.messages.create` body (https://developers.google.com/chat/how-tos/webhooks,
https://developers.google.com/chat/api/reference/rest/v1/cards): a plain `text` fallback (what notifications
show), and a card with a header, a section per listed alert and a button to the alert-receiver. With
`thread_by_group` (the default), `thread.threadKey` is derived from the group key and `messageReplyOption` is
REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD, so one group's escalations, repeats and resolution stay in one thread.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, ValidationInfo, field_validator

from receiver.channels.chat import ChatSettings
from receiver.channels.base import Channel, RateLimit, post
from receiver.channels.markup import http_url, plain
from receiver.channels.text import cut, headline, human_duration, source_of
from receiver.domain import Message, MessageAlert
from receiver.fields import FieldError, Number, PositiveDuration, Secret, check_url

# Google Chat caps a message at 32,000 bytes and a card at 100 widgets; a summary lists at most MAX_SECTIONS
# alerts (three widgets each) and texts are cut well under the limits.
MAX_SECTIONS = 20
TEXT_LIMIT = 2000
WIDGET_TEXT_LIMIT = 1500
REPLY_OPTION = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
DEFAULT_API_URL = "https://chat.googleapis.com"

# Google answers 429 (quota: 1 message per second per space) and 5xx when a retry may succeed, 4xx otherwise:
# the shared classification covers it.
RETRYABLE_CODES: tuple[int, ...] = ()


class GoogleChatSettings(ChatSettings):
    type: Literal["google_chat"]
    # Only to point the channel at a proxy or a test server, as `api_url` does for twilio_sms: the webhook URL
    # must be under it, so a typo cannot send alerts (and the URL's key and token) to another host. Declared
    # before webhook_url so that webhook_url's validator sees it.
    api_url: str = DEFAULT_API_URL
    webhook_url: Secret
    thread_by_group: bool = True
    timeout: PositiveDuration = dt.timedelta(seconds=10)
    # Google Chat allows one write per second per space.
    rate_limit_per_second: Annotated[Number, Field(gt=0)] = 1.0

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return check_url(value, schemes=("https",)).rstrip("/")

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: Secret, info: ValidationInfo) -> Secret:
        check_url(value.reveal(), schemes=("https",))
        url, base = urlsplit(value.reveal()), urlsplit(info.data.get("api_url", DEFAULT_API_URL))
        if (url.scheme, url.netloc) != (base.scheme, base.netloc) or not url.path.startswith(
                base.path + "/v1/spaces/"):
            # The message names the expected shape, never the value: the URL's key and token are credentials.
            raise FieldError(f"must be a Google Chat webhook URL, {base.geturl()}/v1/spaces/…/messages?key=…",
                             fix="copy the URL from the space's Apps & integrations → Webhooks")
        return value


def chat_text(text: object) -> str:
    """Google Chat text that shows as written: its markup is a small HTML subset (and `<url|text>` links in
    `text`), so <, > and & become entities."""
    return plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def thread_key(message: Message) -> str:
    """The thread of a notification group: a digest of its group key, stable across restarts and replicas, and
    free of label values (which Google would otherwise store as thread ids)."""
    return "alert-receiver-" + hashlib.sha256(message.group_key.encode("utf-8")).hexdigest()[:32]


def _section(alert: MessageAlert) -> dict[str, Any]:
    state = f"resolved after {human_duration(alert.ends_at - alert.starts_at)}" if (
        alert.status == "resolved" and alert.ends_at) else alert.status
    top = " · ".join(x for x in (alert.level, state, source_of(alert)) if x)
    widgets: list[dict[str, Any]] = [{"decoratedText": {
        "topLabel": chat_text(cut(top, 300)), "text": f"<b>{chat_text(cut(alert.alertname, 300))}</b>",
        "wrapText": True}}]
    lines = []
    if alert.summary != alert.alertname:
        lines.append(chat_text(cut(alert.summary, 500)))
    if alert.annotations.get("description"):
        lines.append(chat_text(cut(alert.annotations["description"], 1000)))
    if alert.acked_by:
        lines.append("Acknowledged by " + chat_text(alert.acked_by))
    if lines:
        widgets.append({"textParagraph": {"text": cut("<br>".join(lines), WIDGET_TEXT_LIMIT)}})
    buttons = [{"text": label, "onClick": {"openLink": {"url": url}}} for label, url in (
        ("Details", http_url(alert.url)),
        ("Acknowledge", http_url(alert.ack_url) if alert.status == "firing" and not alert.acked_by else ""),
        ("Source", http_url(alert.generator_url)),
        ("Runbook", http_url(alert.annotations.get("runbook_url")))) if url]
    if buttons:
        widgets.append({"buttonList": {"buttons": buttons}})
    return {"widgets": widgets}


class GoogleChatChannel(Channel):
    type = "google_chat"
    settings: GoogleChatSettings

    @property
    def rate_limit(self) -> RateLimit:
        return RateLimit(count=self.settings.rate_limit_per_second, per=1.0)

    def payload(self, message: Message) -> dict[str, Any]:
        title = headline(message)
        # The person a route pages through this channel: by name only, never an address.
        subtitle = f"for {message.recipient.name}" if message.recipient is not None else ""
        text = chat_text(title + (f" — {subtitle}" if subtitle else ""))
        shown = message.shown[:MAX_SECTIONS]
        sections = [_section(a) for a in shown]
        left_out = len(message.alerts) - len(shown)
        receiver = http_url(message.receiver_url)
        if left_out:
            note = (f"{len(message.alerts)} alerts ({message.firing_count} firing, "
                    f"{len(message.alerts) - message.firing_count} resolved); the first {len(shown)} are listed.")
            text += "\n" + note
            footer: dict[str, Any] = {"widgets": [{"textParagraph": {"text": note}}]}
            sections.append(footer)
        if receiver:
            sections.append({"widgets": [{"buttonList": {"buttons": [
                {"text": "Open alert-receiver", "onClick": {"openLink": {"url": receiver}}}]}}]})
            if left_out:
                text += f" All of them: {receiver}"
        # A card header is plain text (no formatting is read there), so it is not entity-escaped: it would show
        # `&lt;` literally. Control characters go all the same.
        header: dict[str, Any] = {"title": cut(plain(title), 200)}
        if subtitle:
            header["subtitle"] = cut(plain(subtitle), 200)
        payload: dict[str, Any] = {
            "text": cut(text, TEXT_LIMIT),
            "cardsV2": [{"cardId": f"alert-receiver-{message.notification_id}",
                         "card": {"header": header, "sections": sections}}],
        }
        if self.settings.thread_by_group:
            payload["thread"] = {"threadKey": thread_key(message)}
        return payload

    def send(self, message: Message) -> None:
        params = {"messageReplyOption": REPLY_OPTION} if self.settings.thread_by_group else None
        url = self.settings.webhook_url.reveal()
        # The credentials are the query's `key` and `token`: masked one by one too, should an error body quote them.
        secrets = [value for _, value in parse_qsl(urlsplit(url).query) if len(value) >= 8]
        post(self.http, url, what="google chat webhook", timeout=self.settings.timeout,
             retryable_codes=RETRYABLE_CODES, secrets=secrets, json=self.payload(message), params=params)
