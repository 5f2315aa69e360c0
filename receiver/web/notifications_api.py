"""GET /api/v1/notifications (delivery history, failures, dead letters), one notification, and its retry."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..domain import NotificationKind, NotificationStatus, Role
from ..store import attempts, outbox
from ..store.queries import iso
from .auth import require
from .context import services
from .api_errors import ApiError, found
from .params import check_known, parse_int, parse_time

bp = Blueprint("notifications_api", __name__, url_prefix="/api/v1")

_PARAMS = ("status", "channel", "kind", "alert_id", "since", "until", "limit", "cursor")
_STATUSES = {s.value for s in NotificationStatus}
_KINDS = {k.value for k in NotificationKind}


def _json(row: dict) -> dict:
    out = {}
    for key in ("id", "channel", "kind", "level", "status", "attempts", "created_at", "next_attempt_at",
                "last_attempt_at", "sent_at", "give_up_at", "last_error", "last_duration_ms", "group_key", "target",
                "person", "person_source",
                "alert_ids"):
        value = row.get(key)
        out[key] = iso(value) if hasattr(value, "isoformat") else value
    out["claimed"] = row.get("claimed_by") is not None
    return out


@bp.get("/notifications")
@require(Role.READ)
def list_():
    args = request.args
    check_known(args, _PARAMS)
    status, kind = args.get("status"), args.get("kind")
    if status and status not in _STATUSES:
        raise ApiError(400, "bad_parameter", f"status: one of {', '.join(sorted(_STATUSES))}", parameter="status")
    if kind and kind not in _KINDS:
        raise ApiError(400, "bad_parameter", f"kind: one of {', '.join(sorted(_KINDS))}", parameter="kind")
    flt = outbox.NotificationFilter(
        status=status, channel=args.get("channel") or None, kind=kind,
        alert_id=parse_int("alert_id", args.get("alert_id"), default=0, minimum=1, maximum=2**62) if args.get("alert_id") else None,
        since=parse_time("since", args["since"]) if args.get("since") else None,
        until=parse_time("until", args["until"]) if args.get("until") else None,
        before_id=parse_int("cursor", args.get("cursor"), default=0, minimum=0, maximum=2**62) or None,
        limit=parse_int("limit", args.get("limit"), default=100, minimum=1, maximum=1000) + 1)
    with services().read() as conn:
        rows = outbox.list_notifications(conn, flt)
    more = len(rows) == flt.limit  # one row past the page says whether there is a next one
    rows = rows[: flt.limit - 1]
    next_cursor = str(rows[-1]["id"]) if more else None
    return jsonify({"notifications": [_json(r) for r in rows], "count": len(rows), "next_cursor": next_cursor})


@bp.get("/notifications/<int:notification_id>")
@require(Role.READ)
def show(notification_id: int):
    with services().read() as conn:
        row = found(outbox.get_notification(conn, notification_id), "notification", notification_id)
    return jsonify(_json(row))


@bp.get("/notifications/<int:notification_id>/attempts")
@require(Role.READ)
def list_attempts(notification_id: int):
    """Every try to deliver the message, oldest first (store/attempts.py)."""
    with services().read() as conn:
        rows = found(attempts.for_message(conn, notification_id), "notification", notification_id)
    return jsonify({"notification_id": notification_id, "attempts": rows})


@bp.post("/notifications/<int:notification_id>/retry")
@require(Role.WRITE)
def retry(notification_id: int):
    """Send a dead (or failing) notification again now, with a fresh give_up_after."""
    svc = services()
    with svc.writes.transaction() as conn:
        row = found(outbox.get_notification(conn, notification_id), "notification", notification_id)
        if not outbox.requeue(conn, notification_id, now=svc.clock.now(),
                                give_up_after=svc.config.delivery.retry.give_up_after):
            raise ApiError(409, "not_retryable", f"notification {notification_id} is {row['status']}; "
                                                 "only failed or dead notifications can be retried")
        row = outbox.get_notification(conn, notification_id)
    return jsonify(_json(row))
