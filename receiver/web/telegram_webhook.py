"""POST /integrations/telegram: the buttons of the telegram channel's messages (Acknowledge / Resolve) act here.

Telegram delivers Updates (https://core.telegram.org/bots/api#update) to the URL given to setWebhook, with the
`secret_token` given there in `X-Telegram-Bot-Api-Secret-Token` (https://core.telegram.org/bots/api#setwebhook).
That header is the authentication: it is compared in constant time with the `webhook_secret` of every configured
telegram channel BEFORE the body is read or parsed; missing or wrong is 401 and changes nothing. No telegram
channel with a webhook_secret: 404 not_configured. Bodies over MAX_BODY: 413.

Only `callback_query` updates (https://core.telegram.org/bots/api#callbackquery) whose `data` is one of our
buttons' (channels/telegram.py: `ack|resolve:alert:<id>` or `ack|resolve:group:<group id>`) act, and only when
the button's message is in the chat of a channel whose secret matched (a bad client can send any callback data,
but only for a message it can see). They act as `telegram:<username>` (or `telegram:<user id>` for a user without
a username) through the same lifecycle functions as the API. Every other update is answered 200 `ignored`.

The answer to a callback is a webhook reply (https://core.telegram.org/bots/api#making-requests-when-getting-
updates): `{"method": "answerCallbackQuery", "callback_query_id", "text"}` stops the button's spinner and shows
the outcome without an outbound call. Callback data that is not ours, or a button from another chat, is answered
the same way (200, a text saying so) rather than 4xx: Telegram retries a non-2xx answer, and a retry cannot help.
A signed body that is not an Update (not JSON, no integer update_id, a callback without id or sender) is 400.

Retries: Telegram redelivers an update until it gets a 2xx. update_ids acted on are remembered
(store/replay_guards.py, as `telegram:<channel>:<update_id>`, kept 7 days), so a retried update acts once. The
root message's edit showing who acted is the engine's: the lifecycle action tells the told channels, and after
that reply the dispatcher enqueues the root's `update`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from typing import Any

from flask import Blueprint, jsonify, request

from ..channels.telegram import Callback, parse_callback_data
from ..engine import lifecycle
from ..store import replay_guards
from ..store.db import read_transaction
from .api_errors import ApiError
from .auth import SIGNATURE, open_access
from .context import services
from .lifecycle_api import _run

log = logging.getLogger("receiver.telegram")
bp = Blueprint("telegram_webhook", __name__)

# An Update with a callback query carries the button's message (at most 4,096 characters of text, its entities
# and keyboard): well under this.
MAX_BODY = 256 * 1024
HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_QUERY_ID = 256
MAX_GUARD_ID = 200  # replay_guards' column
ANSWER_TEXT_LIMIT = 200  # answerCallbackQuery's text: 0-200 characters
_USERNAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_SHAPE = 'a Telegram Update: {"update_id": <integer>, "callback_query": {"id", "from": {"id"}, "data"}}'


def _channels() -> list[tuple[str, Any]]:
    """(name, settings) of every telegram channel with a webhook_secret, in the config's order."""
    return [(name, settings) for name, settings in services().config.channels.items()
            if settings.type == "telegram" and getattr(settings, "webhook_secret", None) is not None]


def _digest(value: str) -> bytes:
    # Fixed-length digests: the comparison's time says nothing of either length. surrogatepass: a header is
    # whatever bytes a client sent.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def matching(presented: str | None, channels: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The channels whose webhook_secret is `presented`, every one compared (no early exit)."""
    if presented is None:
        return []
    given = _digest(presented)
    return [(name, s) for name, s in channels if hmac.compare_digest(given, _digest(s.webhook_secret.reveal()))]


def _malformed(problem: str) -> ApiError:
    return ApiError(400, "malformed_update", f"{problem}; expected {_SHAPE}")


def _answer(query_id: str, text: str, **extra: Any):
    """A webhook reply that answers the callback query: Telegram performs it, the spinner stops."""
    return jsonify({"method": "answerCallbackQuery", "callback_query_id": query_id,
                    "text": text[:ANSWER_TEXT_LIMIT], **extra})


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63 else None


def actor_of(sender: dict) -> str:
    username = sender.get("username")
    if isinstance(username, str) and _USERNAME.fullmatch(username):
        return f"telegram:{username}"
    return f"telegram:{_integer(sender.get('id'))}"


def _same_chat(message: Any, settings: Any) -> bool:
    """Whether the button's message is in the channel's chat (by id, or by @username for a public one)."""
    chat = message.get("chat") if isinstance(message, dict) else None
    if not isinstance(chat, dict):
        return False
    wanted = settings.chat_id
    if isinstance(wanted, int):
        return _integer(chat.get("id")) == wanted
    username = chat.get("username")
    return isinstance(username, str) and username.lower() == wanted[1:].lower()


def _guard_id(channel: str, update_id: int) -> str:
    key = f"telegram:{channel}:{update_id}"
    if len(key) <= MAX_GUARD_ID:
        return key
    return f"telegram:{hashlib.sha256(channel.encode()).hexdigest()[:32]}:{update_id}"


@bp.post("/integrations/telegram")
@open_access(SIGNATURE)
def receive():
    channels = _channels()
    if not channels:
        raise ApiError(404, "not_configured", "no telegram channel has a webhook_secret; add one (and give it to "
                                              "setWebhook as secret_token) to accept Telegram's updates")
    matched = matching(request.headers.get(HEADER), channels)
    if not matched:
        raise ApiError(401, "bad_signature", f"{HEADER} does not match the webhook_secret of any telegram channel")
    if (request.content_length or 0) > MAX_BODY:
        raise ApiError(413, "body_too_large", f"over {MAX_BODY} bytes")
    body = request.get_data(cache=False)
    if len(body) > MAX_BODY:
        raise ApiError(413, "body_too_large", f"over {MAX_BODY} bytes")
    try:
        update = json.loads(body)
    except (ValueError, RecursionError):
        raise _malformed("the body is not JSON") from None
    if not isinstance(update, dict) or _integer(update.get("update_id")) is None:
        raise _malformed("no integer update_id")
    update_id = update["update_id"]
    query = update.get("callback_query")
    if query is None:
        return jsonify({"status": "ignored", "reason": "not a callback query", "update_id": update_id})
    query_id, sender = (query.get("id"), query.get("from")) if isinstance(query, dict) else (None, None)
    if not isinstance(query_id, str) or not 0 < len(query_id) <= MAX_QUERY_ID:
        raise _malformed(f"callback_query.id must be a string of 1 to {MAX_QUERY_ID} characters")
    if not isinstance(sender, dict) or _integer(sender.get("id")) is None:
        raise _malformed("callback_query.from must be a user with an integer id")
    callback = parse_callback_data(query.get("data"))
    if callback is None:
        return _answer(query_id, "This button is not one alert-receiver understands; nothing was done.")
    allowed = [(name, s) for name, s in matched if _same_chat(query.get("message"), s)]
    if not allowed:
        return _answer(query_id, "This button is not from the alert chat; nothing was done.")
    channel = allowed[0][0]
    guard = _guard_id(channel, update_id)
    svc = services()
    with read_transaction(svc.db) as conn:
        if replay_guards.event_seen(conn, guard):
            return _answer(query_id, "Done already.", status="duplicate")
    actor = actor_of(sender)
    text, changed = _apply(callback, actor)
    # After acting: a failure above (503) is retried by Telegram and must not be mistaken for a replay.
    with svc.writes.transaction() as conn:
        replay_guards.remember_event(conn, guard, now=svc.clock.now())
    log.info("telegram button applied", extra={"channel": channel, "update_id": update_id, "action": callback.action,
                                               "alert_id": callback.alert_id, "group_id": callback.group_id,
                                               "actor": actor, "changed": changed})
    return _answer(query_id, text)


def _apply(callback: Callback, actor: str) -> tuple[str, int]:
    """Run the button's action; what to tell the person, and how many alerts changed."""
    comment = "from Telegram"
    if callback.group_id is not None:
        if callback.action == "ack":
            result = _run(lifecycle.ack_group, callback.group_id, actor=actor, comment=comment)
            if result.changed:
                return f"Acknowledged {_alerts(len(result.changed))}.", len(result.changed)
            return ("Already acknowledged." if result.unchanged else "Nothing is firing in this group."), 0
        resolved = _run(lifecycle.resolve_group, callback.group_id, actor=actor, comment=comment).changed
        return (f"Resolved {_alerts(len(resolved))}." if resolved else "Nothing is firing in this group."), \
            len(resolved)
    assert callback.alert_id is not None
    try:
        if callback.action == "ack":
            result = _run(lifecycle.ack, [callback.alert_id], actor=actor, comment=comment)
            return ("Acknowledged." if result.changed else "Already acknowledged."), len(result.changed)
        result = _run(lifecycle.resolve, callback.alert_id, actor=actor, comment=comment)
        return "Resolved.", len(result.changed)
    except ApiError as exc:
        if exc.status == 404:
            return "This alert no longer exists.", 0
        if exc.status == 409:
            return "This alert is resolved already.", 0
        raise


def _alerts(count: int) -> str:
    return f"{count} alert{'s' if count != 1 else ''}"
