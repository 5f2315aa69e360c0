"""The `slack_app` channel: a Slack app's bot posts through the Web API, one thread per notification group.

- The first message of a group is a ROOT message (`chat.postMessage`, https://api.slack.com/methods/chat.postMessage)
  in Block Kit (https://api.slack.com/reference/block-kit/blocks): the headline (current level, kind, state), one
  section per listed alert (the `slack` channel's templates: slack/title.j2, slack/alert.j2, so overrides apply to
  both), and an `actions` block (https://api.slack.com/reference/block-kit/blocks#actions) of buttons
  (https://api.slack.com/reference/block-kit/block-elements#button) whose `action_id` is `ack`, `resolve` or
  `escalate` and whose `value` is `alert:<id>` (a message of one alert) or `group:<group id>`. A click comes back
  signed to POST /integrations/slack/interactions (web/slack_interactions.py).
- Later messages of the group (escalations, repeats, acknowledgements, the resolution) are REPLIES: the same
  call with `thread_ts` = the root's `ts` (https://api.slack.com/messaging/managing#threading).
- Kind `update` EDITS the root (`chat.update`, https://api.slack.com/methods/chat.update: `channel` + `ts`) to
  show the group now: level, who acknowledged, resolved or not; the buttons go once every alert is resolved.
- A digest (Message.digest_groups > 0) is one top-level message without buttons, never a thread root.

Calls are JSON with the bot token as bearer (https://api.slack.com/web#posting_json). Slack answers HTTP 200 with
`{"ok": false, "error": "<code>"}` for API errors (https://api.slack.com/web#evaluating_responses): the codes a
retry can fix are retryable, the rest permanent; HTTP 429 carries Retry-After
(https://api.slack.com/docs/rate-limits). Errors quote Slack's error code only, never the token.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from receiver.channels.base import BODY_QUOTED, Channel, DeliveryError, RateLimit, post, retry_after_seconds
from receiver.channels.chat import ChatSettings
from receiver.channels.markup import mrkdwn
from receiver.channels.slack import MAX_BLOCKS, SECTION_TEXT_LIMIT, TEXT_LIMIT, mention
from receiver.channels.text import cut, headline, minimal_alert_line
from receiver.domain import Message, Posted
from receiver.fields import FieldError, Number, PositiveDuration, Secret, check_url
from receiver.logs import redact

DEFAULT_API_URL = "https://slack.com/api"
# https://api.slack.com/methods/chat.postMessage#errors (and chat.update's): the codes that say "try later".
RETRYABLE_ERRORS = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
                              "request_timeout"})
# A channel ID (C…, G… private, D… direct) or a channel name (lower case, at most 80 characters), `#` optional:
# https://api.slack.com/methods/chat.postMessage#channels
_CHANNEL = re.compile(r"#?[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{2,30}")
_ERROR_CODE = re.compile(r"[a-z0-9_]{1,64}")
ACTIONS = ("ack", "resolve", "escalate")  # the buttons' action_ids, as web/slack_interactions.py reads them
_BUTTONS = (("ack", "Acknowledge", "primary"), ("resolve", "Resolve", None), ("escalate", "Escalate", "danger"))
RESERVED_BLOCKS = 4  # headline, state, the note on alerts left out, actions


class SlackAppSettings(ChatSettings):
    type: Literal["slack_app"]
    bot_token: Secret  # xoxb-…: the app's bot token, with the chat:write scope
    # Verifies the app's interactivity requests (button clicks); None: this channel only posts.
    signing_secret: Secret | None = None
    channel: str  # where roots and digests are posted: a channel ID (C0123ABC) or a name the bot is in
    api_url: str = DEFAULT_API_URL  # Slack's Web API; another URL only for a proxy or a test server
    timeout: PositiveDuration = dt.timedelta(seconds=10)
    # chat.postMessage allows about one message per second per channel (short bursts tolerated):
    # https://api.slack.com/methods/chat.postMessage#rate_limiting
    rate_limit_per_second: Annotated[Number, Field(gt=0)] = 1.0

    @field_validator("bot_token")
    @classmethod
    def _bot_token(cls, value: Secret) -> Secret:
        if not value.reveal().startswith("xoxb-") or len(value.reveal()) > 255:
            raise FieldError("must be a Slack bot token (xoxb-…)",
                             fix="copy the Bot User OAuth Token from the app's OAuth & Permissions page")
        return value

    @field_validator("signing_secret")
    @classmethod
    def _signing_secret(cls, value: Secret | None) -> Secret | None:
        if value is not None and not 8 <= len(value.reveal()) <= 255:
            raise FieldError("must be the app's signing secret (8 to 255 characters)",
                             fix="copy the Signing Secret from the app's Basic Information page")
        return value

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not _CHANNEL.fullmatch(value):
            raise FieldError("must be a Slack channel ID (C0123ABC) or a channel name (alerts-prod)",
                             fix="use the channel ID shown in the channel's details")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return check_url(value).rstrip("/")


def state_of(message: Message) -> str:
    """What an `update` shows the group as: resolved (every alert), acknowledged (every firing one), else firing."""
    firing = [a for a in message.alerts if a.status == "firing"]
    if not firing:
        return "resolved"
    if all(a.acked_by for a in firing):
        return "acknowledged"
    return "firing"


def button_value(message: Message) -> str | None:
    """What the buttons act on: the alert when the message carries one, else its group; None when neither."""
    if len(message.alerts) == 1:
        return f"alert:{message.alerts[0].id}"
    return f"group:{message.group_id}" if message.group_id else None


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_TEXT_LIMIT)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text, SECTION_TEXT_LIMIT)}]}


def _actions(message: Message, value: str) -> dict[str, Any]:
    firing = [a for a in message.alerts if a.status == "firing"]
    everyone_acked = bool(firing) and all(a.acked_by for a in firing)
    elements = []
    for action_id, label, style in _BUTTONS:
        if action_id == "ack" and everyone_acked:
            continue  # nothing left to acknowledge; resolving and escalating still make sense
        button: dict[str, Any] = {"type": "button", "action_id": action_id, "value": value,
                                  "text": {"type": "plain_text", "text": label}}
        if style:
            button["style"] = style
        elements.append(button)
    return {"type": "actions", "block_id": "alert-receiver-actions", "elements": elements}


def state_line(message: Message) -> str:
    """`2 firing · 1 resolved · acknowledged by alice, slack:U01`: the group at a glance (mrkdwn)."""
    firing = message.firing_count
    parts = [f"{firing} firing"] if firing else []
    if len(message.alerts) - firing:
        parts.append(f"{len(message.alerts) - firing} resolved")
    ackers = list(dict.fromkeys(a.acked_by for a in message.alerts if a.acked_by and a.status == "firing"))
    if ackers:
        shown = ", ".join(mrkdwn(cut(name, 100)) for name in ackers[:5])
        parts.append("Acknowledged by " + shown + (f" and {len(ackers) - 5} more" if len(ackers) > 5 else ""))
    return " · ".join(parts) or "no alerts"


class SlackAppChannel(Channel):
    type = "slack_app"
    settings: SlackAppSettings
    threads = True

    @property
    def rate_limit(self) -> RateLimit:
        return RateLimit(count=self.settings.rate_limit_per_second, per=1.0)

    # --- payloads -----------------------------------------------------------------------------------------

    def blocks(self, message: Message, *, buttons: bool) -> list[dict[str, Any]]:
        """Headline, state, one section per listed alert, the note on those left out and (`buttons`) the actions:
        at most MAX_BLOCKS blocks, each text within Slack's 3,000 characters."""
        shown_as = message
        if message.kind == "update":  # the headline names the group's state now, not "UPDATE"
            shown_as = dataclasses.replace(message, kind=state_of(message))
        title = self.renderer.render_message("slack/title.j2", shown_as)
        blocks = [_section(mention(message) + (title or f"*{mrkdwn(headline(shown_as))}*")),
                  _context(state_line(message))]
        room = MAX_BLOCKS - RESERVED_BLOCKS
        shown = message.shown[:room]
        for alert in shown:
            section = self.renderer.render_alert("slack/alert.j2", message, alert)
            blocks.append(_section(section or mrkdwn(minimal_alert_line(alert))))  # Slack rejects an empty section
        if len(shown) < len(message.alerts):
            blocks.append(_context(f"… and {len(message.alerts) - len(shown)} more alerts "
                                   f"({len(message.alerts)} in all)"))
        value = button_value(message) if buttons else None
        if value is not None and message.firing_count:  # no buttons once everything is resolved
            blocks.append(_actions(message, value))
        return blocks

    def text(self, message: Message) -> str:
        """The top-level `text`: the notification preview and the fallback where blocks cannot show. slack/text.j2
        is plain text, but Slack reads `text` as mrkdwn: escaped here, so an alertname cannot ping anyone."""
        shown_as = dataclasses.replace(message, kind=state_of(message)) if message.kind == "update" else message
        return cut(mention(message) + mrkdwn(self.renderer.render_message("slack/text.j2", shown_as)), TEXT_LIMIT)

    def payload(self, message: Message) -> tuple[str, dict[str, Any]]:
        """(method, body) for `message`: chat.postMessage for a root, reply or digest, chat.update for an update."""
        thread = message.thread
        if message.kind == "update":
            if thread is None:  # the dispatcher only creates updates for a stored thread; a bug if not
                raise DeliveryError("an update without a thread to edit", retryable=False)
            return "chat.update", {"channel": thread.conversation, "ts": thread.root_id, "text": self.text(message),
                                   "blocks": self.blocks(message, buttons=True)}
        body: dict[str, Any] = {"channel": self.settings.channel, "text": self.text(message),
                                "unfurl_links": False, "unfurl_media": False}
        if message.digest_groups > 0:
            body["blocks"] = self.blocks(message, buttons=False)
        elif thread is None:
            body["blocks"] = self.blocks(message, buttons=True)
        else:
            body["channel"] = thread.conversation
            body["thread_ts"] = thread.root_id
            body["blocks"] = self.blocks(message, buttons=False)
        return "chat.postMessage", body

    # --- sending --------------------------------------------------------------------------------------------

    def send(self, message: Message) -> Posted | None:
        method, body = self.payload(message)
        answer = self.call(method, body)
        if method == "chat.update" or message.thread is not None or message.digest_groups > 0:
            return None
        channel, ts = answer.get("channel"), answer.get("ts")
        if not (isinstance(channel, str) and isinstance(ts, str) and 0 < len(channel) <= 100 and 0 < len(ts) <= 64):
            # Posted, but without ids to thread on: retrying would post it twice.
            raise DeliveryError(f"slack {method}: the answer has no channel and ts to thread on", retryable=False)
        return Posted(conversation=channel, root_id=ts)

    def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST one Web API method; the answer's JSON when it says ok, else DeliveryError quoting Slack's code."""
        token = self.settings.bot_token.reveal()
        secrets = [token, f"Bearer {token}"]
        if self.settings.signing_secret is not None:
            secrets.append(self.settings.signing_secret.reveal())
        what = f"slack {method}"
        response = post(self.http, f"{self.settings.api_url}/{method}", what=what, timeout=self.settings.timeout,
                        secrets=secrets, json=body,
                        headers={"Authorization": f"Bearer {token}",
                                 "Content-Type": "application/json; charset=utf-8"})
        try:
            answer = json.loads(response.content)
        except (ValueError, RecursionError):
            answer = None
        if not isinstance(answer, dict):
            # A proxy's page, or a cut answer: whether Slack posted is unknown; a retry is the lesser harm.
            raise DeliveryError(f"{what}: HTTP {response.status_code} but the answer is not Slack's JSON",
                                retryable=True)
        if answer.get("ok") is True:
            return answer
        code = answer.get("error")
        code = code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else "unknown_error"
        code = redact(code, secrets)[:BODY_QUOTED]
        retryable = code in RETRYABLE_ERRORS
        raise DeliveryError(f"{what}: {code}", retryable=retryable,
                            retry_after=retry_after_seconds(response.headers.get("Retry-After")) if retryable
                            else None)
