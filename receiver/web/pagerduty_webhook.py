"""POST /webhooks/pagerduty: PagerDuty's V3 webhooks turn an incident acknowledged, un-acknowledged or resolved in
PagerDuty into the same lifecycle action here, so an ack in PagerDuty stops the SMS and Slack repeats too.

Authenticated by signature, not by token: `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>` under the
`webhook_secret` of a configured pagerduty channel (several signatures during a secret rotation). The incident
is found by its incident_key, which is the dedup_key our pagerduty channel sent. Anything we do not act on is
answered 2xx, so PagerDuty does not retry it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

from flask import Blueprint, jsonify, request

from ..channels.pagerduty import alert_id_from_dedup_key
from ..engine import lifecycle
from .auth import SIGNATURE, open_access
from .context import services
from .errors import ApiError
from .lifecycle_api import _run

log = logging.getLogger("receiver.pagerduty")
bp = Blueprint("pagerduty_webhook", __name__)

MAX_BODY = 1024 * 1024
_ACTIONS = {"incident.acknowledged": "ack", "incident.resolved": "resolve", "incident.unacknowledged": "unack"}


def _secrets() -> list[bytes]:
    found = []
    for settings in services().config.channels.values():
        secret = getattr(settings, "webhook_secret", None) if settings.type == "pagerduty" else None
        if secret is not None:
            found.append(secret.reveal().encode("utf-8"))
    return found


def signature_valid(body: bytes, header: str, secrets: list[bytes]) -> bool:
    presented = [part.strip()[3:] for part in header.split(",") if part.strip().startswith("v1=")]
    ok = False
    for secret in secrets:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        for candidate in presented:
            ok |= hmac.compare_digest(expected, candidate)  # no early exit: timing says nothing
    return ok


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
    try:
        event = json.loads(body)["event"]
        event_type = event["event_type"]
        data = event.get("data") or {}
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "malformed_event", "expected a PagerDuty V3 webhook: {\"event\": {\"event_type\", \"data\"}}") from None
    action = _ACTIONS.get(event_type)
    key = data.get("incident_key") or data.get("dedup_key") or ""
    alert_id = alert_id_from_dedup_key(key) if isinstance(key, str) else None
    if action is None or alert_id is None:
        return jsonify({"status": "ignored", "reason": "not an incident action we mirror, or not one of our alerts",
                        "event_type": event_type})
    agent = (event.get("agent") or {}).get("summary") or "pagerduty"
    actor = f"{agent} (PagerDuty)"
    comment = f"{event_type} in PagerDuty"
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
    log.info("pagerduty webhook applied", extra={"event_type": event_type, "alert_id": alert_id,
                                                 "changed": bool(result.changed)})
    return jsonify({"status": "applied" if result.changed else "unchanged", "action": action, "alert_id": alert_id})
