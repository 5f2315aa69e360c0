"""GET /api/v1/alerts (filtered history, keyset pages) and GET /api/v1/alerts/<id> (one occurrence + timeline)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..domain import Role
from ..store.queries import get_alert, list_alerts
from .auth import require
from .context import services
from .api_errors import ApiError, found
from .params import ALERT_FILTER_PARAMS, alert_filter, check_known, parse_int

bp = Blueprint("alerts_api", __name__, url_prefix="/api/v1")


@bp.get("/alerts")
@require(Role.READ)
def list_():
    args = request.args
    check_known(args, ALERT_FILTER_PARAMS + ("limit", "cursor", "order"))
    flt = alert_filter(args)
    limit = parse_int("limit", args.get("limit"), default=100, minimum=1, maximum=1000)
    cursor = parse_int("cursor", args.get("cursor"), default=0, minimum=0, maximum=2**62) or None
    order = args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "bad_parameter", "order: must be asc or desc", parameter="order")
    with services().read() as conn:
        alerts, next_cursor = list_alerts(conn, flt, limit=limit, after_id=cursor, order=order)
    return jsonify({"alerts": alerts, "count": len(alerts),
                    "next_cursor": str(next_cursor) if next_cursor is not None else None})


@bp.get("/alerts/<int:alert_id>")
@require(Role.READ)
def show(alert_id: int):
    check_known(request.args, ())
    with services().read() as conn:
        alert = found(get_alert(conn, alert_id), "alert", alert_id)
    return jsonify(alert)
