"""DELETE /api/v1/history?older_than=90d (admin): retention on demand, rolled up first (engine/retention.py).

The request works for at most BUDGET seconds (a client or proxy gives up on a silent request, and sync gunicorn
workers kill one at `timeout`, 30 s): a larger purge answers `"complete": false` and continues where it stopped when asked again (each batch is
committed). `dry_run=true` only counts. `alert-receiver purge` has no such limit.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, jsonify, request

from ..domain import Role
from ..engine import retention
from ..fields import FieldError, format_duration, parse_duration
from ..store.db import is_unavailable
from ..store.queries import iso
from .auth import require
from .context import services
from .api_errors import ApiError
from .params import check_known, parse_bool

bp = Blueprint("history_api", __name__, url_prefix="/api/v1")

BUDGET = 20.0  # seconds of work per request, well inside gunicorn's 30 s timeout


def parse_older_than(value: str | None) -> dt.timedelta:
    if not value:
        raise ApiError(400, "bad_parameter", "older_than is required, e.g. older_than=90d", parameter="older_than")
    try:
        older_than = parse_duration(value)
    except FieldError as exc:
        raise ApiError(400, "bad_parameter", f"older_than: {exc}", parameter="older_than", fix=exc.fix) from None
    if older_than < retention.MIN_AGE:
        raise ApiError(400, "bad_parameter", "older_than: must be at least 1d", parameter="older_than")
    return older_than


@bp.delete("/history")
@require(Role.ADMIN)
def purge():
    args = request.args
    check_known(args, ("older_than", "dry_run"))
    older_than = parse_older_than(args.get("older_than"))
    dry_run = parse_bool("dry_run", args["dry_run"]) if args.get("dry_run") else False
    svc = services()
    try:
        cutoff = retention.cutoff_for(svc.clock.now(), older_than)
    except OverflowError:
        raise ApiError(400, "bad_parameter", "older_than: reaches before year 1", parameter="older_than") from None
    try:
        if dry_run:
            return jsonify({"older_than": format_duration(older_than), "cutoff": iso(cutoff), "dry_run": True,
                            "eligible": retention.count(svc.db, cutoff)})
        result = retention.purge(svc.writes, cutoff, budget=BUDGET)
    except Exception as exc:
        if is_unavailable(exc):
            # Every batch before the failure is committed (and rolled up): asking again continues.
            raise ApiError(503, "storage_unavailable", "the database is unavailable or locked; retry",
                           headers={"Retry-After": "5"}) from None
        raise
    body = {"older_than": format_duration(older_than), **result.as_dict()}
    if not result.complete:
        body["detail"] = "stopped after the time budget; call again to continue"
    return jsonify(body)
