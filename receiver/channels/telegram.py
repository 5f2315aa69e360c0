"""The `telegram` channel: a Telegram bot posting to one chat, one thread per notification group.

Bot API calls are HTTPS POSTs of JSON to `{api_url}/bot<token>/<method>` and answer
`{"ok": true, "result": ...}` or `{"ok": false, "error_code", "description", "parameters": {"retry_after"}}`
(https://core.telegram.org/bots/api#making-requests, #responseparameters). The token is in the URL's path, so
errors name the method only and mask the token (and the URL) should an answer quote them.

- The first message of a group posts a root (`sendMessage`, https://core.telegram.org/bots/api#sendmessage) with
  an inline keyboard, Acknowledge / Resolve (https://core.telegram.org/bots/api#inlinekeyboardmarkup,
  #inlinekeyboardbutton), whose `callback_data` (1-64 bytes) is `ack:alert:<id>` / `resolve:alert:<id>` for a
  group of one alert, else `ack:group:<group id>` / `resolve:group:<group id>`; the clicks come back to
  web/telegram_webhook.py. `send` returns Posted(chat id, message_id) for the engine to store.
- Escalations, repeats, acknowledgements and the resolution reply to the root (`reply_parameters`,
  https://core.telegram.org/bots/api#replyparameters, with allow_sending_without_reply should the root have been
  deleted).
- kind `update` edits the root (`editMessageText`, https://core.telegram.org/bots/api#editmessagetext) to show the
  group's state now: level, who acknowledged, resolved or not; once nothing fires the keyboard is gone (an edit
  without `reply_markup` removes it). Telegram refuses an edit that changes nothing ("message is not modified"):
  that is success.
- A digest of many groups' repeats is one plain top-level message.

Text is HTML (`parse_mode: HTML`, https://core.telegram.org/bots/api#html-style): every alert-controlled value is
`html.escape`d, links are only http(s) (previews off: #linkpreviewoptions), and the text is built whole lines at a time under Telegram's 4,096
characters, so a cut never splits a tag or an entity.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import logging
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, field_validator

from receiver.channels.base import (BODY_QUOTED, Channel, DeliveryError, RateLimit, check_response, http_timeout,
                                    note_status,
                                    request_error, retry_after_seconds, url_secrets)
from receiver.channels.chat import ChatSettings
from receiver.channels.markup import http_url, plain
from receiver.channels.text import cut, headline, human_duration, one_line, source_of
from receiver.domain import Message, MessageAlert, Posted
from receiver.fields import FieldError, Number, PositiveDuration, Secret, check_url
from receiver.logs import redact

if TYPE_CHECKING:
    import requests

log = logging.getLogger("receiver.channels.telegram")

DEFAULT_API_URL = "https://api.telegram.org"
TEXT_LIMIT = 4096  # a message's text, 1-4096 characters after entities parsing (#sendmessage)
CALLBACK_DATA_LIMIT = 64  # bytes (#inlinekeyboardbutton)
MAX_LINES = 30  # alerts listed in one message; a group has a page in the receiver for the rest
NAME_LIMIT, SUMMARY_LIMIT = 200, 300  # characters of an alertname / summary, cut before escaping
URL_LIMIT = 1000

# "<bot id>:<secret>" as @BotFather hands it out (https://core.telegram.org/bots/api#authorizing-your-bot).
_BOT_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,100}")
# setWebhook's secret_token: "1-256 characters. Only characters A-Z, a-z, 0-9, _ and - are allowed".
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
# A chat's numeric id (groups negative, supergroups and channels -100…) or a public @username (5-32 characters).
_NUMERIC_CHAT = re.compile(r"-?[0-9]{1,20}")
_USERNAME_CHAT = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}")
_NOT_MODIFIED = "message is not modified"

# What our keyboard's buttons carry: the action and what it acts on. Parsed back by parse_callback_data.
ACTIONS = ("ack", "resolve")
_CALLBACK = re.compile(r"(ack|resolve):(?:alert:([1-9][0-9]{0,17})|group:([0-9a-f]{16}))")


class TelegramSettings(ChatSettings):
    type: Literal["telegram"]
    bot_token: Secret
    chat_id: int | str
    # Only to point the channel at a local Bot API server, a proxy or a test server.
    api_url: str = DEFAULT_API_URL
    # The `secret_token` given to setWebhook: Telegram sends it in X-Telegram-Bot-Api-Secret-Token with every
    # update, and POST /integrations/telegram acts only on updates that carry it. None: no buttons are acted on.
    webhook_secret: Secret | None = None
    timeout: PositiveDuration = dt.timedelta(seconds=10)
    # Telegram: at most about 20 messages a minute to one group, one a second to one chat
    # (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this).
    rate_limit_per_minute: Annotated[Number, Field(gt=0, le=60)] = 20.0

    @field_validator("bot_token")
    @classmethod
    def _bot_token(cls, value: Secret) -> Secret:
        if not _BOT_TOKEN.fullmatch(value.reveal()):
            raise FieldError("must be a bot token as @BotFather gives it, <bot id>:<secret> (digits, a colon, then "
                             "letters, digits, _ and -)", fix="copy the token from @BotFather's /token or /mybots")
        return value

    @field_validator("chat_id", mode="before")
    @classmethod
    def _chat_id(cls, value: Any) -> int | str:
        if isinstance(value, bool):
            raise FieldError("expected a chat id, got a boolean", fix='write the numeric id, e.g. -1001234567890')
        text = str(value).strip() if isinstance(value, (int, str)) else ""
        if _NUMERIC_CHAT.fullmatch(text):
            return int(text)
        if _USERNAME_CHAT.fullmatch(text):
            return text
        raise FieldError("must be a numeric chat id (e.g. -1001234567890) or a public @username",
                         fix="write the chat's id as getUpdates or @userinfobot shows it, or @channelname")

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return check_url(value).rstrip("/")

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: Secret | None) -> Secret | None:
        if value is not None and not _WEBHOOK_SECRET.fullmatch(value.reveal()):
            # Never the value: it is a credential.
            raise FieldError("must be 1 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule for "
                             "setWebhook's secret_token)",
                             fix="generate one, e.g. `openssl rand -hex 32`, and give the same to setWebhook")
        return value


# --- callback data -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Callback:
    """What a button asks: `action` (ack | resolve) on one alert (`alert_id`) or a whole group (`group_id`)."""

    action: str
    alert_id: int | None = None
    group_id: str | None = None

    @property
    def data(self) -> str:
        target = f"alert:{self.alert_id}" if self.alert_id is not None else f"group:{self.group_id}"
        return f"{self.action}:{target}"


def parse_callback_data(data: object) -> Callback | None:
    """The Callback a button of ours carries; None for anything else (a bad client can send any data)."""
    if not isinstance(data, str) or len(data.encode("utf-8")) > CALLBACK_DATA_LIMIT:
        return None
    found = _CALLBACK.fullmatch(data)
    if found is None:
        return None
    action, alert_id, group_id = found.groups()
    return Callback(action, alert_id=int(alert_id)) if alert_id else Callback(action, group_id=group_id)


def _target(message: Message, action: str) -> Callback | None:
    if len(message.alerts) == 1:
        return Callback(action, alert_id=message.alerts[0].id)
    if re.fullmatch(r"[0-9a-f]{16}", message.group_id or ""):
        return Callback(action, group_id=message.group_id)
    return None  # several alerts and no group id: no button could name them all


def keyboard(message: Message) -> dict[str, Any] | None:
    """The inline keyboard for a group's state: Acknowledge while something fires unacknowledged, Resolve while
    something fires, none once all is resolved."""
    firing = [a for a in message.alerts if a.status == "firing"]
    labels = [("ack", "Acknowledge")] if any(not a.acked_by for a in firing) else []
    labels += [("resolve", "Resolve")] if firing else []
    buttons = [{"text": label, "callback_data": target.data}
               for action, label in labels if (target := _target(message, action)) is not None]
    return {"inline_keyboard": [buttons]} if buttons else None


# --- text ----------------------------------------------------------------------------------------------------


def esc(text: object) -> str:
    """Telegram HTML text that shows as written (quotes too: the same escape serves attribute values)."""
    return html.escape(plain(text), quote=True)


def _link(url: object, label: str) -> str:
    href = http_url(url)
    # A link longer than URL_LIMIT is left out: it would crowd the alerts out of the 4,096 characters.
    return f'<a href="{html.escape(href, quote=True)}">{esc(label)}</a>' if 0 < len(href) <= URL_LIMIT else ""


def _alert_line(alert: MessageAlert, *, with_level: bool) -> str:
    state = (f"resolved after {human_duration(alert.ends_at - alert.starts_at)}"
             if alert.status == "resolved" and alert.ends_at else alert.status)
    where = source_of(alert)
    parts = [f"• <b>{esc(cut(one_line(alert.alertname), NAME_LIMIT))}</b>"]
    if where:
        parts.append(f"on {esc(cut(one_line(where), NAME_LIMIT))}")
    if alert.summary != alert.alertname:
        parts.append(f"— {esc(cut(one_line(alert.summary), SUMMARY_LIMIT))}")
    notes = [alert.level] if with_level else []
    notes.append(state)
    if alert.acked_by and alert.status == "firing":
        notes.append(f"acknowledged by {cut(one_line(alert.acked_by), NAME_LIMIT)}")
    parts.append(f"({esc(', '.join(notes))})")
    links = " ".join(x for x in (_link(alert.url, "details"), _link(alert.annotations.get("runbook_url"), "runbook"))
                     if x)
    return " ".join(parts) + (f" {links}" if links else "")


def _state_kind(message: Message) -> str:
    """For the root's edit: what the group is now."""
    firing = [a for a in message.alerts if a.status == "firing"]
    if not firing:
        return "resolved"
    return "acknowledged" if all(a.acked_by for a in firing) else "firing"


def text_of(message: Message) -> str:
    """The message's HTML text, whole lines under TEXT_LIMIT."""
    if message.digest_groups:
        title = (f"[{message.level} REPEAT] {message.digest_groups} groups still firing "
                 f"({len(message.alerts)} alert{'s' if len(message.alerts) != 1 else ''})")
    elif message.kind == "update":
        title = headline(dataclasses.replace(message, kind=_state_kind(message)))
    else:
        title = headline(message)
    head = [f"<b>{esc(cut(title, NAME_LIMIT + 100))}</b>"]
    if message.recipient is not None:  # by name only, never an address
        head.append(f"for {esc(cut(message.recipient.name, NAME_LIMIT))}")
    if message.kind == "update":
        acked = sorted({a.acked_by for a in message.alerts if a.acked_by and a.status == "firing"})
        if acked:
            head.append("Acknowledged by " + esc(cut(", ".join(acked), 500)))
    receiver = _link(message.receiver_url, "Open alert-receiver")
    shown = message.alerts[:MAX_LINES]
    lines: list[str] = []
    room = TEXT_LIMIT - sum(len(x) + 1 for x in head) - len(receiver) - 80  # 80: the "… and N more" line
    with_level = message.digest_groups > 0 or message.kind == "update"
    for alert in shown:
        line = _alert_line(alert, with_level=with_level)
        if len(line) + 1 > room:
            break
        lines.append(line)
        room -= len(line) + 1
    if len(lines) < len(message.alerts):
        lines.append(esc(f"… and {len(message.alerts) - len(lines)} more ({len(message.alerts)} in all)"))
    text = "\n".join([*head, *lines, *([receiver] if receiver else [])])
    return text if len(text) <= TEXT_LIMIT else head[0]  # cannot happen: the lines were measured


# --- the channel -------------------------------------------------------------------------------------------


class TelegramChannel(Channel):
    type = "telegram"
    settings: TelegramSettings
    threads = True

    @property
    def rate_limit(self) -> RateLimit:
        return RateLimit(count=self.settings.rate_limit_per_minute, per=60.0)

    def payload(self, message: Message) -> tuple[str, dict[str, Any]]:
        """The Bot API method and its parameters for `message`."""
        text = text_of(message)
        base: dict[str, Any] = {"text": text, "parse_mode": "HTML", "link_preview_options": {"is_disabled": True}}
        thread = message.thread
        if message.digest_groups:
            return "sendMessage", {"chat_id": self.settings.chat_id, **base}
        if message.kind == "update" and thread is not None:
            params = {"chat_id": _chat(thread.conversation), "message_id": _message_id(thread.root_id), **base}
            markup = keyboard(message)
            if markup:  # without reply_markup the edit removes the keyboard
                params["reply_markup"] = markup
            return "editMessageText", params
        if thread is not None:
            return "sendMessage", {"chat_id": _chat(thread.conversation), **base, "reply_parameters": {
                "message_id": _message_id(thread.root_id), "allow_sending_without_reply": True}}
        params = {"chat_id": self.settings.chat_id, **base}
        markup = keyboard(message)
        if markup:
            params["reply_markup"] = markup
        return "sendMessage", params

    def send(self, message: Message) -> Posted | None:
        if message.kind == "update" and message.thread is None:
            raise DeliveryError("telegram: an update without a thread has no message to edit", retryable=False)
        method, params = self.payload(message)
        try:
            result = self.call(method, params)
        except DeliveryError as exc:
            if method == "editMessageText" and _NOT_MODIFIED in exc.reason:
                return None  # the root shows this state already
            raise
        if method != "sendMessage" or message.thread is not None or message.digest_groups:
            return None
        try:
            return Posted(conversation=str(int(result["chat"]["id"])), root_id=str(int(result["message_id"])))
        except (TypeError, KeyError, ValueError):
            # Delivered, but without ids to thread on: the group's next message starts a new root.
            log.warning("telegram sendMessage answered without chat.id and message_id", extra={"channel": self.name})
            return None

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """POST one Bot API method; its `result`, or DeliveryError naming the method (never the URL)."""
        import requests

        token = self.settings.bot_token.reveal()
        url = f"{self.settings.api_url}/bot{token}/{method}"
        what = f"telegram {method}"
        webhook_secret = self.settings.webhook_secret
        secrets = [token, token.partition(":")[2], *url_secrets(url),
                   *([webhook_secret.reveal()] if webhook_secret is not None else [])]
        try:
            response = self.http.post(url, json=params, timeout=http_timeout(self.settings.timeout),
                                      allow_redirects=False)
        except requests.RequestException as exc:
            raise request_error(exc, what=what) from None
        note_status(response.status_code)  # recorded with the attempt (engine/delivery.py)
        answer = _json(response)
        if answer is None or "ok" not in answer:
            check_response(response, what=what, secrets=secrets)  # not the Bot API's JSON: by status alone
            return None
        if answer["ok"] is True and 200 <= response.status_code < 300:
            return answer.get("result")
        raise _api_error(response, answer, what=what, secrets=secrets)


def _json(response: "requests.Response") -> dict | None:
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _api_error(response: "requests.Response", answer: dict, *, what: str, secrets: list[str]) -> DeliveryError:
    """A Bot API error answer as a DeliveryError: 429 and 5xx retryable (429 with parameters.retry_after, else
    Retry-After), every other error permanent. The description is quoted, masked and cut."""
    code = answer.get("error_code")
    status = code if isinstance(code, int) and not isinstance(code, bool) else response.status_code
    description = answer.get("description")
    detail = redact(one_line(description), secrets)[:BODY_QUOTED] if isinstance(description, str) else ""
    parameters = answer.get("parameters") if isinstance(answer.get("parameters"), dict) else {}
    migrated = parameters.get("migrate_to_chat_id")
    if isinstance(migrated, int) and not isinstance(migrated, bool):
        detail += f" (the group is now the supergroup {migrated}: set chat_id to it)"
    reason = f"{what}: HTTP {status}" + (f": {detail}" if detail else "")
    retryable = status == 429 or status >= 500 or response.status_code == 429 or response.status_code >= 500
    retry_after = None
    if retryable:
        after = parameters.get("retry_after")
        retry_after = (float(after) if isinstance(after, (int, float)) and not isinstance(after, bool) and after >= 0
                       else retry_after_seconds(response.headers.get("Retry-After")))
    return DeliveryError(reason, retryable=retryable, retry_after=retry_after, code=response.status_code)


def _chat(conversation: str) -> int | str:
    return int(conversation) if _NUMERIC_CHAT.fullmatch(conversation) else conversation


def _message_id(root_id: str) -> int | str:
    return int(root_id) if root_id.isdigit() else root_id
