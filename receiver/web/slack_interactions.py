"""POST /integrations/slack/interactions: a click on a button of a `slack_app` root message (channels/slack_app.py)
acknowledges, resolves or escalates here, as the Slack user who clicked.

Slack sends `application/x-www-form-urlencoded` with one field, `payload`, a JSON `block_actions` document
(https://api.slack.com/interactivity/handling#payloads, https://api.slack.com/reference/interaction-payloads/
block-actions-payload). Authenticated by signature, not by token, and verified BEFORE anything is parsed
(https://api.slack.com/authentication/verifying-requests-from-slack): `X-Slack-Signature: v0=<hex HMAC-SHA256 of
"v0:" + X-Slack-Request-Timestamp + ":" + raw body>` under the `signing_secret` of any configured slack_app channel,
compared in constant time; a timestamp more than 5 minutes from the services' clock is refused (a captured request
cannot be replayed later). Unsigned, badly signed or stale: 401, nothing changes.

Of the payload only `type`, `user` (`id`, `username`, `name`) and `actions[].action_id` / `value` are read. The
actor is `slack:<user id>` (the member ID: stable and unique, where a display name is neither; it is what
`people.*.slack_user` holds); the username goes into the event's comment. Actions:

- `ack`: `alert:<id>` → lifecycle.ack; `group:<group id>` → lifecycle.ack_group (one statement).
- `resolve`: `alert:<id>` → lifecycle.resolve; `group:<group id>` → every firing alert of the group with
  lifecycle.resolve_open in one transaction (one conditional UPDATE).
- `escalate`: `alert:<id>` → lifecycle.escalate; `group:<group id>` → lifecycle.escalate per firing alert of the
  group (escalation is per occurrence: each climbs from its own level); those already at L1 are left as they are.

Anything else (another payload type, an unknown action_id, a value that names nothing, an alert already resolved)
is answered 200 `ignored`, so Slack shows no error and does not retry. Retries: Slack resends a request it got no
answer to within 3 s. The request is remembered after acting (store/replay_guards.py, event id
`slack:<sha256 of the raw body>`): the body carries the click's own trigger_id and action_ts, so a resend — with
the same signature, or re-signed with a fresh timestamp — acts once and is answered 200 `ignored` (duplicate). Nothing
here calls out: the messages the action implies (the thread reply, the root's update) go through the outbox, so the
answer comes in milliseconds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import urllib.parse

from flask import Blueprint, jsonify, request

from ..engine import lifecycle
from ..store import replay_guards, timers
from ..store.db import read_transaction
from .api_errors import ApiError
from .auth import SIGNATURE, open_access
from .context import channel_secrets, services
from .lifecycle_api import _run

log = logging.getLogger("receiver.slack")
bp = Blueprint("slack_interactions", __name__)

PATH = "/integrations/slack/interactions"
MAX_BODY = 64 * 1024  # a block_actions payload is a few KiB (it repeats the message's blocks)
MAX_SKEW = dt.timedelta(minutes=5)  # Slack's own advice
MAX_ACTIONS = 5  # a click sends one; a payload listing more is not Slack's
_ALERT = re.compile(r"alert:([1-9][0-9]{0,17})")
_GROUP = re.compile(r"group:([0-9a-f]{16})")
_USER_ID = re.compile(r"[A-Z0-9]{2,32}")  # Slack member IDs: U…/W… and upper-case alphanumerics
_USER_NAME = re.compile(r"[\w.\-]{1,80}")
_SHAPE = ('form field "payload": a Slack block_actions JSON document {"type", "user": {"id"}, '
          '"actions": [{"action_id", "value"}]}')
_CLICKED = {"ack": "Acknowledge", "resolve": "Resolve", "escalate": "Escalate"}


def _secrets() -> list[bytes]:
    return list(channel_secrets("slack_app", "signing_secret").values())


def signature_valid(body: bytes, timestamp: str, header: str, secrets: list[bytes]) -> bool:
    """Whether `header` is `v0=` + the HMAC of v0:timestamp:body under one of `secrets` (all compared, no early
    exit, so the timing says nothing of which)."""
    presented = header.strip().encode("utf-8", "replace")
    base = b"v0:" + timestamp.encode("utf-8", "replace") + b":" + body
    ok = False
    for secret in secrets:
        expected = b"v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest().encode("ascii")
        ok |= hmac.compare_digest(expected, presented)
    return ok


def timestamp_fresh(timestamp: str, now: dt.datetime) -> bool:
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False
    # In seconds, not as a datetime: a timestamp in the year 33658 is merely stale, not an error.
    return abs(now.timestamp() - int(timestamp)) <= MAX_SKEW.total_seconds()


@dataclasses.dataclass(frozen=True)
class Click:
    action: str  # ack | resolve | escalate, or what Slack sent (ignored)
    value: str


@dataclasses.dataclass(frozen=True)
class Interaction:
    type: str
    user_id: str
    user_name: str | None
    clicks: tuple[Click, ...]


def _malformed(problem: str) -> ApiError:
    return ApiError(400, "malformed_payload", f"{problem}; expected {_SHAPE}")


def _short_text(doc: dict, key: str, limit: int, where: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _malformed(f"{where}.{key} must be a string of at most {limit} characters")
    return value


def parse_interaction(body: bytes) -> Interaction:
    """The interaction in a signed body; 400 malformed_payload naming the first thing that is not as Slack sends."""
    try:
        text = body.decode("utf-8")
        fields = urllib.parse.parse_qs(text, keep_blank_values=True, strict_parsing=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise _malformed("the body is not a UTF-8 form (application/x-www-form-urlencoded)") from None
    payloads = fields.get("payload", [])
    if len(payloads) != 1:
        raise _malformed('the form must have exactly one "payload" field')
    try:
        doc = json.loads(payloads[0])
    except (ValueError, RecursionError):
        raise _malformed("payload is not JSON") from None
    if not isinstance(doc, dict):
        raise _malformed("payload is not a JSON object")
    kind = _short_text(doc, "type", 64, "payload")
    if not kind:
        raise _malformed("payload.type is missing")
    user = doc.get("user")
    if not isinstance(user, dict):
        raise _malformed("payload.user must be an object")
    user_id = _short_text(user, "id", 32, "payload.user")
    if not user_id or not _USER_ID.fullmatch(user_id):
        raise _malformed("payload.user.id must be a Slack member ID (U0123ABC)")
    name = _short_text(user, "username", 80, "payload.user") or _short_text(user, "name", 80, "payload.user")
    actions = doc.get("actions", [])
    if not isinstance(actions, list) or len(actions) > MAX_ACTIONS:
        raise _malformed(f"payload.actions must be a list of at most {MAX_ACTIONS}")
    clicks = []
    for k, action in enumerate(actions):
        if not isinstance(action, dict):
            raise _malformed(f"payload.actions[{k}] must be an object")
        clicks.append(Click(_short_text(action, "action_id", 255, f"payload.actions[{k}]") or "",
                            _short_text(action, "value", 2000, f"payload.actions[{k}]") or ""))
    return Interaction(kind, user_id, name if name and _USER_NAME.fullmatch(name) else None, tuple(clicks))


def _read_at_most(limit: int) -> bytes:
    """The body, but no more than `limit` bytes of it (a chunked body has no Content-Length to check first). A
    stream's read may return less than asked before its end, so it is read until the end or the limit."""
    parts, size = [], 0
    while size < limit:
        part = request.stream.read(limit - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


@bp.post(PATH)
@open_access(SIGNATURE)
def receive():
    secrets = _secrets()
    if not secrets:
        raise ApiError(404, "not_configured", "no slack_app channel has a signing_secret; add one to accept Slack "
                                              "interactions")
    if (request.content_length or 0) > MAX_BODY:
        raise ApiError(413, "body_too_large", f"over {MAX_BODY} bytes")
    body = _read_at_most(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise ApiError(413, "body_too_large", f"over {MAX_BODY} bytes")
    svc = services()
    now = svc.clock.now()
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    if not signature_valid(body, timestamp, request.headers.get("X-Slack-Signature", ""), secrets):
        raise ApiError(401, "bad_signature", "X-Slack-Signature does not match any configured signing_secret")
    if not timestamp_fresh(timestamp, now):
        raise ApiError(401, "bad_signature", "X-Slack-Request-Timestamp is more than 5 minutes from now: stale "
                                             "(or a replay)")
    if request.mimetype != "application/x-www-form-urlencoded":
        raise ApiError(415, "unsupported_media_type", "Slack interactions are application/x-www-form-urlencoded")
    interaction = parse_interaction(body)
    if interaction.type != "block_actions":
        return jsonify({"status": "ignored", "reason": f"payload type {interaction.type!r} is not acted on"})
    event_id = "slack:" + hashlib.sha256(body).hexdigest()
    with read_transaction(svc.db) as conn:
        if replay_guards.event_seen(conn, event_id):
            return jsonify({"status": "ignored", "reason": "duplicate: this interaction was acted on already"})
    results = [_apply(interaction, click) for click in interaction.clicks]
    # After acting: a failure above (503) is retried by Slack and must not be mistaken for a replay.
    with svc.writes.transaction() as conn:
        replay_guards.remember_event(conn, event_id, now=now)
    applied = any(r["status"] == "applied" for r in results)
    status = "applied" if applied else ("unchanged" if any(r["status"] == "unchanged" for r in results)
                                        else "ignored")
    return jsonify({"status": status, "actions": results})


def _target(value: str) -> tuple[str, int | str] | None:
    if m := _ALERT.fullmatch(value):
        return "alert", int(m.group(1))
    if m := _GROUP.fullmatch(value):
        return "group", m.group(1)
    return None


def _apply(interaction: Interaction, click: Click) -> dict:
    action = click.action
    target = _target(click.value)
    if action not in _CLICKED or target is None:
        return {"status": "ignored", "action": action[:64],
                "reason": "not one of our buttons (action_id ack, resolve or escalate; value alert:<id> or "
                          "group:<group id>)"}
    kind, ident = target
    actor = f"slack:{interaction.user_id}"
    comment = f"{_CLICKED[action]} clicked in Slack" + (f" by @{interaction.user_name}" if interaction.user_name
                                                           else "")
    try:
        if kind == "alert":
            changed = _on_alert(action, int(ident), actor, comment)
        else:
            changed = _on_group(action, str(ident), actor, comment)
    except ApiError as exc:
        if exc.status in (404, 409):  # no such alert, resolved already, at L1 already: nothing to do
            return {"status": "ignored", "action": action, "target": click.value, "reason": exc.detail}
        raise
    log.info("slack interaction applied", extra={"action": action, "target": click.value, "actor": actor,
                                                 "changed": len(changed)})
    return {"status": "applied" if changed else "unchanged", "action": action, "target": click.value,
            "changed": changed}


def _on_alert(action: str, alert_id: int, actor: str, comment: str) -> list[int]:
    if action == "ack":
        return _run(lifecycle.ack, [alert_id], actor=actor, comment=comment).changed
    if action == "resolve":
        return _run(lifecycle.resolve, alert_id, actor=actor, comment=comment).changed
    return _run(lifecycle.escalate, alert_id, actor=actor, comment=comment).changed


def _on_group(action: str, group_id: str, actor: str, comment: str) -> list[int]:
    svc = services()
    if action == "ack":
        return _run(lifecycle.ack_group, group_id, actor=actor, comment=comment).changed
    if action == "resolve":
        return _run(lifecycle.resolve_group, group_id, actor=actor, comment=comment).changed
    with svc.read() as conn:
        ids = timers.open_ids_of_group(conn, group_id=group_id)
    changed: list[int] = []
    for alert_id in sorted(ids):
        try:
            changed += _run(lifecycle.escalate, alert_id, actor=actor, comment=comment).changed
        except ApiError as exc:
            if exc.status not in (404, 409):  # at L1 already, or resolved meanwhile: the others still climb
                raise
    return changed
