"""Dead letters of the webhook: list them, look at one, replay one after a fix (admin)."""

from __future__ import annotations

import base64

from flask import Blueprint, jsonify, request

from .. import payload as payload_mod
from ..domain import Role
from ..engine.ingest import ingest
from ..store import webhooks as webhook_store
from ..store.queries import iso
from .auth import require
from .context import services
from .api_errors import ApiError, found
from .params import check_known, parse_int

bp = Blueprint("rejected_api", __name__, url_prefix="/api/v1/webhooks/rejected")


def _shape(row: dict) -> dict:
    out = {k: (iso(v) if hasattr(v, "tzinfo") else v) for k, v in row.items() if k != "body"}
    if "body" in row:
        body: bytes = row["body"]
        try:
            out["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            out["body_base64"] = base64.b64encode(body).decode("ascii")
    return out


@bp.get("")
@require(Role.READ)
def list_():
    check_known(request.args, ("limit", "cursor"))
    limit = parse_int("limit", request.args.get("limit"), default=100, minimum=1, maximum=1000)
    cursor = parse_int("cursor", request.args.get("cursor"), default=0, minimum=0, maximum=2**62) or None
    with services().read() as conn:
        rows = webhook_store.list_rejected(conn, limit=limit + 1, before_id=cursor)
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify({"rejected": [_shape(r) for r in rows],
                    "next_cursor": str(rows[-1]["id"]) if more else None})


@bp.get("/<int:rejected_id>")
@require(Role.READ)
def show(rejected_id: int):
    with services().read() as conn:
        row = found(webhook_store.get_rejected(conn, rejected_id), "rejected webhook", rejected_id)
    return jsonify(_shape(row))


@bp.post("/<int:rejected_id>/replay")
@require(Role.ADMIN)
def replay(rejected_id: int):
    """Run a dead letter through ingest again, e.g. after a config fix or an upgrade that accepts it."""
    svc = services()
    with svc.read() as conn:
        row = found(webhook_store.get_rejected(conn, rejected_id), "rejected webhook", rejected_id)
    if row["body_truncated"]:
        raise ApiError(409, "body_truncated", "only the first part of this body was kept; it cannot be replayed")
    now = svc.clock.now()
    try:
        parsed = payload_mod.parse(row["body"])
    except payload_mod.PayloadError as exc:
        with svc.writes.transaction() as conn:
            webhook_store.mark_replayed(conn, rejected_id, status=exc.status, now=now)
        raise ApiError(exc.status, exc.reason, exc.message, path=exc.path) from None
    with svc.writes.transaction() as conn:
        result = ingest(conn, parsed, config=svc.config, now=now, source=row["source"], raw_body=row["body"])
        webhook_store.mark_replayed(conn, rejected_id, status=200, now=now)
    return jsonify({"status": "ok", "alerts": len(parsed.alerts), **dict(sorted(result.outcomes.items()))})
