"""The `msteams` channel: Microsoft Teams incoming webhooks and workflow URLs, as one Adaptive Card.

The card holds a heading (`msteams/title.j2`) and one container per listed alert (`msteams/alert.j2`), and is
kept under Teams' 28 KB message limit by leaving alerts out (saying how many) rather than failing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Literal


from receiver.channels.chat import ChatSettings
from receiver.channels.base import Channel, DeliveryError, post
from receiver.channels.markup import http_url, teams_md, teams_url
from receiver.channels.text import cut, minimal_alert_line
from receiver.domain import Message
from receiver.fields import HttpsSecretUrl, PositiveDuration

# https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
# #send-messages-using-curl-and-powershell: "The message size limit is 28 KB".
MAX_BYTES = 28_000
HEADING_LIMIT = 2000
ALERT_TEXT_LIMIT = 4000

# Connectors and workflows answer 429 when rate limited and 5xx on their own trouble
# (https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
# #rate-limiting-for-connectors): no extra retryable codes.
RETRYABLE_CODES: tuple[int, ...] = ()

# Legacy Office 365 connectors answer 200 and put a failure in the body, e.g. "Webhook message delivery
# failed with error: Microsoft Teams endpoint returned HTTP error 429 with ContextId ...".
_LEGACY_FAILURE_RE = re.compile(r"returned HTTP error (\d{3})")

LEVEL_COLOURS = {"L1": "Attention", "L2": "Warning", "L3": "Accent"}  # Adaptive Card TextBlock colours
LEVEL_STYLES = {"L1": "attention", "L2": "warning", "L3": "accent"}  # and Container styles


class MsTeamsSettings(ChatSettings):
    type: Literal["msteams"]
    webhook_url: HttpsSecretUrl
    timeout: PositiveDuration = dt.timedelta(seconds=10)


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def envelope(card: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


class MsTeamsChannel(Channel):
    type = "msteams"
    settings: MsTeamsSettings

    def _card(self, message: Message, heading: dict, blocks: list[dict], left_out: int) -> dict[str, Any]:
        body = [heading, *blocks]
        if left_out:
            note = f"… and {left_out} more alert{'s' if left_out != 1 else ''} not shown ({len(message.alerts)} in all)"
            if teams_url(message.receiver_url):
                note += f": [alert-receiver]({teams_url(message.receiver_url)})"
            body.append({"type": "TextBlock", "text": note, "wrap": True, "isSubtle": True, "separator": True})
        card: dict[str, Any] = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "msteams": {"width": "Full"},
            "body": body,
        }
        if http_url(message.receiver_url):
            card["actions"] = [{"type": "Action.OpenUrl", "title": "Open alert-receiver",
                                "url": http_url(message.receiver_url)}]
        return envelope(card)

    def payload(self, message: Message) -> bytes:
        """The POST body, under MAX_BYTES: as many of the listed alerts as fit, in order."""
        resolved = message.kind == "resolved"
        heading = {"type": "TextBlock", "wrap": True, "weight": "Bolder", "size": "Medium",
                   "color": "Good" if resolved else LEVEL_COLOURS.get(message.level, "Default"),
                   "text": cut(self.renderer.render_message("msteams/title.j2", message), HEADING_LIMIT)}
        blocks = []
        if message.recipient is not None:  # the person a route pages through this channel
            heading = {**heading, "text": heading["text"] + teams_md(f" — for {message.recipient.name}")}
        for alert in message.shown:
            text = (self.renderer.render_alert("msteams/alert.j2", message, alert)
                    or teams_md(minimal_alert_line(alert)))
            style = "good" if alert.status == "resolved" else LEVEL_STYLES.get(alert.level, "default")
            blocks.append({"type": "Container", "style": style, "separator": True,
                           "items": [{"type": "TextBlock", "text": cut(text, ALERT_TEXT_LIMIT), "wrap": True}]})
        # Size each block once, then take the longest prefix that fits; encode to confirm (the note's length
        # depends on how many are left out, so step down until the exact body fits).
        sizes = [len(encode(b)) + 1 for b in blocks]
        base = len(self._encoded(message, heading, [], len(message.alerts)))
        count, used = 0, base
        while count < len(blocks) and used + sizes[count] <= MAX_BYTES:
            used += sizes[count]
            count += 1
        while True:
            body = self._encoded(message, heading, blocks[:count], len(message.alerts) - count)
            if len(body) <= MAX_BYTES or count == 0:
                return body
            count -= 1

    def _encoded(self, message: Message, heading: dict, blocks: list[dict], left_out: int) -> bytes:
        return encode(self._card(message, heading, blocks, left_out))

    def send(self, message: Message) -> None:
        response = post(self.http, self.settings.webhook_url.reveal(), what="teams webhook",
                        timeout=self.settings.timeout, retryable_codes=RETRYABLE_CODES,
                        data=self.payload(message), headers={"Content-Type": "application/json; charset=utf-8"})
        match = _LEGACY_FAILURE_RE.search(response.text or "")
        if match:
            code = int(match.group(1))
            raise DeliveryError(f"teams webhook: HTTP {response.status_code}, but Teams answered HTTP {code}",
                                retryable=code == 429 or code >= 500)
