"""GET /api/v1/alerts/<id>/related (read) and POST /api/v1/correlations (write). Thin: statistics/
read_correlations.py and write_correlations.py."""

from __future__ import annotations

import datetime as dt
import math
import re

from flask import Blueprint, g, jsonify, request

from ..domain import Role
from ..fields import FieldError, format_duration, parse_duration
from ..statistics import read_correlations, write_correlations
from .auth import require
from .context import services
from .api_errors import ApiError, found
from .lifecycle_api import json_body
from .params import check_known, parse_int

bp = Blueprint("correlations_api", __name__, url_prefix="/api/v1")

DEFAULT_WINDOW = dt.timedelta(minutes=30)
MAX_WINDOW = dt.timedelta(hours=24)  # the instance and service sources scan this much of starts_at
TYPE = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
MAX_COMMENT = 4000


def parse_window(value: str | None) -> dt.timedelta:
    if not value:
        return DEFAULT_WINDOW
    try:
        window = parse_duration(value)
    except FieldError as exc:
        raise ApiError(400, "bad_parameter", f"window: {exc}", parameter="window", fix=exc.fix) from None
    if not dt.timedelta(seconds=1) <= window <= MAX_WINDOW:
        raise ApiError(400, "bad_parameter", "window: must be between 1s and 24h", parameter="window")
    return window


@bp.get("/alerts/<int:alert_id>/related")
@require(Role.READ)
def related(alert_id: int):
    args = request.args
    check_known(args, ("window", "limit"))
    window = parse_window(args.get("window"))
    limit = parse_int("limit", args.get("limit"), default=50, minimum=1, maximum=500)
    svc = services()
    with svc.read() as conn:
        related = found(read_correlations.related(conn, alert_id, window=window, limit=limit, now=svc.clock.now()),
                        "alert", alert_id)
    return jsonify({"alert_id": alert_id, "window": format_duration(window), "count": len(related),
                    "related": related})


def _id(body: dict, key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
        raise ApiError(400, "bad_field", f"{key}: must be an alert id (a positive integer)", field=key)
    return value


@bp.post("/correlations")
@require(Role.WRITE)
def create():
    check_known(request.args, ())
    body = json_body(("alert_id", "related_alert_id", "type", "score", "comment", "actor"))
    for key in ("alert_id", "related_alert_id"):
        if key not in body:
            raise ApiError(400, "missing_field", f"{key} is required", field=key)
    kind = body.get("type", "manual")
    if not isinstance(kind, str) or not TYPE.match(kind):
        raise ApiError(400, "bad_field", "type: one lower-case word (letters, digits, _ . -), at most 32",
                       field="type")
    score = body.get("score", 1.0)
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score) \
            or not 0.0 <= score <= 1.0:
        raise ApiError(400, "bad_field", "score: a number between 0 and 1", field="score")
    comment = body.get("comment")
    if comment is not None and len(comment) > MAX_COMMENT:
        raise ApiError(400, "bad_field", f"comment: at most {MAX_COMMENT} characters", field="comment")
    new = write_correlations.NewLink(alert_id=_id(body, "alert_id"), related_alert_id=_id(body, "related_alert_id"),
                               type=kind, score=float(score), comment=comment,
                               actor=(body.get("actor") or "").strip() or g.principal.name)
    svc = services()
    try:
        with svc.writes.transaction() as conn:
            created = write_correlations.link(conn, new, now=svc.clock.now())
    except write_correlations.CorrelationError as exc:
        raise ApiError(exc.status, exc.reason, exc.message) from None
    # A database that is down or locked: errors.py answers 503 with Retry-After for every route.
    return jsonify(created), 201
