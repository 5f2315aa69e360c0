"""POST /webhooks/pagerduty: PagerDuty's V3 webhooks turn an incident acknowledged, un-acknowledged or resolved in
PagerDuty into the same lifecycle action here, so an ack in PagerDuty stops the SMS and Slack repeats too.

Authenticated by signature, not by token: `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>` under the
`webhook_secret` of a configured pagerduty channel (several signatures during a secret rotation). The incident
is found by its incident_key, which is the dedup_key our pagerduty channel sent. Anything we do not act on is
answered 2xx, so PagerDuty does not retry it; a signed body that is not a V3 event is a 400.

Replays: a signed event stays valid forever, so an old "acknowledged" replayed after someone unacknowledged would
stop the escalation again. Event ids acted on are remembered (store/replay_guards.py, kept 7 days) and a repeated
id is answered `ignored` (reason: duplicate) without acting; an event that occurred more than MAX_AGE ago is not
acted on, so a replay is always either remembered or too old (PagerDuty sends occurred_at with every event).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging

from flask import Blueprint, jsonify, request

from ..channels.pagerduty import alert_id_from_dedup_key
from ..engine import lifecycle
from ..store import replay_guards
from ..store.db import read_transaction
from ..store.queries import iso
from .auth import SIGNATURE, open_access
from .context import channel_secrets, services
from .api_errors import ApiError
from .lifecycle_api import _run
from .params import parse_time

log = logging.getLogger("receiver.pagerduty")
bp = Blueprint("pagerduty_webhook", __name__)

MAX_BODY = 1024 * 1024
MAX_ID = 200  # the column's width (store/models.py PagerdutyEvent); PagerDuty's ids are 26 characters
MAX_TEXT = 200  # event_type, agent summary
# PagerDuty retries a delivery for minutes, not days; its clock may be a little ahead of ours. Both well inside the
# 7 days ids are kept (replay_guards.PAGERDUTY_EVENTS_KEPT).
MAX_AGE = dt.timedelta(days=1)
MAX_AHEAD = dt.timedelta(hours=1)
_SHAPE = 'a PagerDuty V3 webhook: {"event": {"id", "event_type", "occurred_at", "agent": {}, "data": {}}}'
_ACTIONS = {"incident.acknowledged": "ack", "incident.resolved": "resolve", "incident.unacknowledged": "unack"}


def _secrets() -> list[bytes]:
    return list(channel_secrets("pagerduty", "webhook_secret").values())


def signature_valid(body: bytes, header: str, secrets: list[bytes]) -> bool:
    presented = [part.strip()[3:] for part in header.split(",") if part.strip().startswith("v1=")]
    ok = False
    for secret in secrets:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        for candidate in presented:
            ok |= hmac.compare_digest(expected, candidate)  # no early exit: timing says nothing
    return ok


@dataclasses.dataclass(frozen=True)
class Event:
    id: str
    type: str
    occurred_at: dt.datetime | None
    data: dict
    agent: str  # who acted, as PagerDuty names them


def _malformed(problem: str) -> ApiError:
    return ApiError(400, "malformed_event", f"{problem}; expected {_SHAPE}")


def _text(event: dict, key: str, limit: int) -> str:
    value = event.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise _malformed(f"event.{key} must be a string of 1 to {limit} characters")
    return value


def _object(event: dict, key: str) -> dict:
    value = event.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _malformed(f"event.{key} must be an object, not {type(value).__name__}")
    return value


def _time(event: dict) -> dt.datetime:
    try:
        return parse_time("event.occurred_at", _text(event, "occurred_at", 64))
    except ApiError as exc:
        raise _malformed(exc.detail) from None


def parse_event(body: bytes) -> Event:
    """The V3 event in a signed body; 400 malformed_event naming the first thing that is not as PagerDuty sends."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise _malformed("the body is not JSON") from None
    event = doc.get("event") if isinstance(doc, dict) else None
    if not isinstance(event, dict):
        raise _malformed('no "event" object')
    occurred_at = _time(event) if "occurred_at" in event else None
    agent = _object(event, "agent").get("summary")
    if agent is not None and not isinstance(agent, str):
        raise _malformed("event.agent.summary must be a string")
    return Event(_text(event, "id", MAX_ID), _text(event, "event_type", MAX_TEXT), occurred_at,
                 _object(event, "data"), (agent or "pagerduty")[:MAX_TEXT])


@bp.post("/webhooks/pagerduty")
@open_access(SIGNATURE)
def receive():
    secrets = _secrets()
    if not secrets:
        raise ApiError(404, "not_configured", "no pagerduty channel has a webhook_secret; add one to accept "
                                              "PagerDuty webhooks")
    body = request.get_data(cache=False)
    if len(body) > MAX_BODY:
        raise ApiError(413, "body_too_large", f"over {MAX_BODY} bytes")
    if not signature_valid(body, request.headers.get("X-PagerDuty-Signature", ""), secrets):
        raise ApiError(401, "bad_signature", "X-PagerDuty-Signature does not match any configured webhook_secret")
    event = parse_event(body)
    action = _ACTIONS.get(event.type)
    key = event.data.get("incident_key") or event.data.get("dedup_key") or ""
    alert_id = alert_id_from_dedup_key(key) if isinstance(key, str) else None
    if action is None or alert_id is None:
        return jsonify({"status": "ignored", "reason": "not an incident action we mirror, or not one of our alerts",
                        "event_type": event.type})
    svc = services()
    now = svc.clock.now()
    if event.occurred_at is not None and not now - MAX_AGE <= event.occurred_at <= now + MAX_AHEAD:
        return jsonify({"status": "ignored", "reason": f"occurred_at {iso(event.occurred_at)} is not within a day of "
                                                       "now: too old to act on (or a replay)", "alert_id": alert_id})
    with read_transaction(svc.db) as conn:
        if replay_guards.event_seen(conn, event.id):
            return jsonify({"status": "ignored", "reason": f"duplicate: event {event.id!r} was acted on already",
                            "alert_id": alert_id})
    answer = _apply(event, action, alert_id)
    # After acting: a failure above (503) is retried by PagerDuty and must not be mistaken for a replay.
    with svc.writes.transaction() as conn:
        replay_guards.remember_event(conn, event.id, now=now)
    return answer


def _apply(event: Event, action: str, alert_id: int):
    actor = f"{event.agent} (PagerDuty)"
    comment = f"{event.type} in PagerDuty"
    try:
        if action == "ack":
            result = _run(lifecycle.ack, [alert_id], actor=actor, comment=comment)
        elif action == "unack":
            result = _run(lifecycle.unack, alert_id, actor=actor, comment=comment)
        else:
            result = _run(lifecycle.resolve, alert_id, actor=actor, comment=comment)
    except ApiError as exc:
        if exc.status in (404, 409):  # already resolved here, or gone: nothing to mirror
            return jsonify({"status": "ignored", "reason": exc.detail, "alert_id": alert_id})
        raise
    log.info("pagerduty webhook applied", extra={"event_type": event.type, "event_id": event.id, "alert_id": alert_id,
                                                 "changed": bool(result.changed)})
    return jsonify({"status": "applied" if result.changed else "unchanged", "action": action, "alert_id": alert_id})
