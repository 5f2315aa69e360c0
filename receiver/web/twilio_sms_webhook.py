"""POST /integrations/twilio/sms: a reply "ACK 42" to one of our SMS acknowledges every firing alert that SMS
(outbox message 42) carried (issue #18). Set the Twilio number's "A message comes in" webhook to
`<server.public_url>/integrations/twilio/sms` (HTTP POST).

The request is Twilio's incoming-message webhook, form-encoded (From, To, Body, MessageSid, AccountSid, ...:
https://www.twilio.com/docs/messaging/guides/webhook-request). Authenticated by signature, not by token
(https://www.twilio.com/docs/usage/security#validating-requests): `X-Twilio-Signature` is the base64 HMAC-SHA1,
under the account's auth token, of the URL Twilio called followed by every POST parameter's name and value, sorted
by name. The URL is `server.public_url` + the path, never the one this process sees (a proxy in front changes the
scheme, host or port): without public_url the endpoint is off (404). Each configured twilio_sms channel's
auth_token is tried, every one of them, compared in constant time; the signature is checked before the body's
fields are read, and a bad or missing one is a 401 that changes nothing.

What a reply may do: only the numbers the message went to may acknowledge it — the channel's `to` numbers and the
phone of the person the message paged (notifications.person or its `person:` target → people.<name>.phone) — and
only messages of a channel whose auth token signed the request. "ACK 42" (any case, "ack #42", spaces around)
acknowledges; "RESOLVE 42" resolves the firing alerts. Anything else, or a refusal, is answered with a TwiML
message saying why (https://www.twilio.com/docs/messaging/twiml), which Twilio texts back; nothing changes.

Actor: "sms:<person name>" when From is a configured person's phone (config.people), else "sms:<From>" (E.164).

Retries: the MessageSid is remembered (store/replay_guards.py, "twilio:<MessageSid>", kept like PagerDuty's event
ids) once acted on; the same MessageSid again is answered without acting. A replay of a signed request with any
parameter changed fails the signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from flask import Blueprint, Response, request

from ..channels.twilio_sms import REPLY_ACK_KINDS
from ..engine import lifecycle
from ..store import replay_guards
from ..store.db import read_transaction
from ..store.outbox import get_notification
from .api_errors import ApiError
from .auth import SIGNATURE, open_access
from .context import channel_secrets, services
from .lifecycle_api import _run

log = logging.getLogger("receiver.twilio_sms")
bp = Blueprint("twilio_sms_webhook", __name__)

PATH = "/integrations/twilio/sms"
# Twilio's incoming-message webhook is a few dozen short parameters (a message body is at most 1,600 characters).
MAX_BODY = 16 * 1024
MAX_FIELDS = 100
MAX_SID = 64  # MessageSid: "SM" + 32 hex digits
MAX_NUMBER = 32
MAX_TEXT = 1600
MAX_ID = 2**63 - 1  # notifications.id is a BIGINT
SYNTAX = "Reply ACK <number> (the number at the end of the alert SMS), e.g. ACK 42."
_COMMAND = re.compile(r"\s*(ACK|RESOLVE)\s*#?\s*([0-9]{1,19})\s*", re.IGNORECASE)


def _channels() -> dict[str, bytes]:
    """name → auth token of every twilio_sms channel."""
    return channel_secrets("twilio_sms", "auth_token")


def signature(token: bytes, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature for a POST to `url` with `params`, as its helper libraries compute it: names
    sorted (each once), and a repeated name's values sorted."""
    data = url
    names = sorted({name for name, _ in params})
    for name in names:
        for value in sorted({v for n, v in params if n == name}):
            data += name + value
    return base64.b64encode(hmac.new(token, data.encode("utf-8"), hashlib.sha1).digest()).decode("ascii")


def signed_by(header: str, url: str, params: list[tuple[str, str]], tokens: dict[str, bytes]) -> set[str]:
    """The channels whose auth token produced `header`: every token is tried (no early exit)."""
    presented = header.strip().encode("utf-8", "replace")
    matched = set()
    for name, token in tokens.items():
        if hmac.compare_digest(signature(token, url, params).encode("ascii"), presented):
            matched.add(name)
    return matched


def twiml(text: str | None) -> Response:
    """A TwiML answer; Twilio texts `text` back to the sender (None: no reply)."""
    inner = f"<Message>{escape(text)}</Message>" if text else ""
    body = f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'
    return Response(body, status=200, mimetype="text/xml")


def _form(body: bytes) -> list[tuple[str, str]] | None:
    """The POST parameters; None for a body that is not a form of UTF-8 fields (Twilio never sends one)."""
    if request.mimetype != "application/x-www-form-urlencoded":
        return None
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return None


def _field(params: list[tuple[str, str]], name: str, limit: int, *, required: bool = True) -> str:
    values = [v for n, v in params if n == name]
    if not values and not required:
        return ""
    if len(values) != 1 or not int(required) <= len(values[0]) <= limit:
        raise ApiError(400, "malformed_request", f"{name} must be given once, at most {limit} characters")
    return values[0]


@bp.post(PATH)
@open_access(SIGNATURE)
def receive():
    svc = services()
    tokens = _channels()
    if not tokens:
        raise ApiError(404, "not_configured", "no twilio_sms channel is configured",
                       fix="add a channel of type twilio_sms to accept SMS replies")
    public_url = svc.config.server.public_url
    if not public_url:
        raise ApiError(404, "not_configured", "Twilio signs the URL it calls, which this receiver only knows from "
                                              "server.public_url",
                       fix=f"set server.public_url and point the number's webhook at <public_url>{PATH}")
    if (request.content_length or 0) > MAX_BODY:
        raise ApiError(413, "body_too_large", f"over {MAX_BODY} bytes")
    body = request.get_data(cache=False)
    if len(body) > MAX_BODY:
        raise ApiError(413, "body_too_large", f"over {MAX_BODY} bytes")
    params = _form(body)
    header = request.headers.get("X-Twilio-Signature", "")
    # A body that is no form cannot carry Twilio's signature: refused like a wrong one.
    channels = signed_by(header, public_url + PATH, params, tokens) if params is not None else set()
    if not channels:
        raise ApiError(401, "bad_signature", "X-Twilio-Signature does not match the auth_token of any twilio_sms "
                                             f"channel for a form POSTed to {public_url}{PATH}")
    sid = _field(params, "MessageSid", MAX_SID)
    sender = _field(params, "From", MAX_NUMBER)
    text = _field(params, "Body", MAX_TEXT, required=False)  # empty for a picture without text
    command = _COMMAND.fullmatch(text)
    if command is None or int(command.group(2)) > MAX_ID:
        return twiml(f"Not understood. {SYNTAX}")
    action, message_id = command.group(1).lower(), int(command.group(2))
    guard = f"twilio:{sid}"
    with read_transaction(svc.db) as conn:
        if replay_guards.event_seen(conn, guard):
            return twiml(f"Already done (#{message_id}).")
        message = get_notification(conn, message_id)
    refusal = _refusal(message, message_id, sender, channels)
    if refusal:
        log.info("sms reply refused", extra={"message_id": message_id, "reason": refusal})
        return twiml(refusal)
    actor = actor_for(sender)
    answer = _act(action, message_id, message["alert_ids"], actor)
    # After acting, as for PagerDuty: a failure above (503) is retried by Twilio and must not count as done.
    with svc.writes.transaction() as conn:
        replay_guards.remember_event(conn, guard, now=svc.clock.now())
    return twiml(answer)


def _refusal(message: dict | None, message_id: int, sender: str, channels: set[str]) -> str | None:
    """Why `sender` may not act on `message`; None: it may."""
    if message is None or message["channel"] not in channels or message["kind"] not in REPLY_ACK_KINDS:
        return f"No alert SMS #{message_id} was sent from this number. {SYNTAX}"
    if sender not in allowed_numbers(message):
        return f"SMS #{message_id} was not sent to {sender}: only its recipients may acknowledge it."
    return None


def allowed_numbers(message: dict) -> set[str]:
    """The numbers `message` went to: its channel's `to`, and the phone of the person it paged."""
    config = services().config
    numbers = set(getattr(config.channels.get(message["channel"]), "to", None) or ())
    person = message.get("person")
    target = message.get("target") or ""
    if person is None and target.startswith("person:"):
        person = target.removeprefix("person:")
    phone = getattr(config.people.get(person), "phone", None) if person else None
    if phone:
        numbers.add(phone)
    return numbers


def actor_for(sender: str) -> str:
    """ "sms:<person>" for a configured person's phone (the first by name when several share it), else
    "sms:<number>"."""
    people = sorted(name for name, p in services().config.people.items() if p.phone == sender)
    return f"sms:{people[0] if people else sender}"


def _plural(count: int) -> str:
    return f"{count} alert{'' if count == 1 else 's'}"


def _act(action: str, message_id: int, alert_ids: list[int], actor: str) -> str:
    comment = f"SMS reply to #{message_id}"
    if action == "ack":
        result = _run(lifecycle.ack, alert_ids, actor=actor, comment=comment, strict=False)
        changed = len(result.changed)
        log.info("sms reply acknowledged", extra={"message_id": message_id, "actor": actor, "changed": changed})
        if not changed:
            return f"Nothing to acknowledge (#{message_id}): already acknowledged or resolved."
        return f"Acknowledged {_plural(changed)} (#{message_id})"
    resolved = 0
    for alert_id in alert_ids:
        try:
            resolved += bool(_run(lifecycle.resolve, alert_id, actor=actor, comment=comment).changed)
        except ApiError as exc:
            if exc.status not in (404, 409):  # gone, or resolved already: nothing to do for it
                raise
    log.info("sms reply resolved", extra={"message_id": message_id, "actor": actor, "changed": resolved})
    if not resolved:
        return f"Nothing to resolve (#{message_id}): already resolved."
    return f"Resolved {_plural(resolved)} (#{message_id})"
