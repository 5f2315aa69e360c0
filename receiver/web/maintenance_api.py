"""Maintenance windows: POST /api/v1/maintenance (make one), GET /api/v1/maintenance (list), POST
/api/v1/maintenance/<id>/end (end one early). Thin: stored by store/maintenance.py; the engine mutes the alerts a
window matches (engine/mutes.py), those firing already at their next timer."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, g, jsonify, request

from ..domain import Role
from ..matchers import MatcherError, parse_matchers
from ..store import maintenance
from .api_errors import ApiError
from .auth import require
from .context import services
from .lifecycle_api import json_body
from .params import check_known, parse_bool, parse_time

bp = Blueprint("maintenance_api", __name__, url_prefix="/api/v1")

MAX_MATCHERS = 20
MAX_MATCHER_LENGTH = 1024
MAX_COMMENT = 2000
MAX_LISTED = 1000
_FIELDS = ("matchers", "start", "end", "comment", "actor")


def _matchers(body: dict[str, Any]) -> list[str]:
    """Each item one matcher, as a route's `matchers:` in receiver.yml; at least one (to mute every alert, say so:
    alertname=~".+")."""
    value = body.get("matchers")
    if value is None:
        raise ApiError(400, "missing_field", "matchers is required", field="matchers")
    if not isinstance(value, list) or not value or len(value) > MAX_MATCHERS:
        raise ApiError(400, "bad_field", f"matchers: a list of 1 to {MAX_MATCHERS} matcher strings, e.g. "
                       '[\'service="db"\'] (to mute every alert: [\'alertname=~".+"\'])', field="matchers")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_MATCHER_LENGTH:
            raise ApiError(400, "bad_field", f"matchers[{i}]: a matcher string of at most {MAX_MATCHER_LENGTH} "
                           "characters", field="matchers")
        try:
            found = parse_matchers(item)
        except MatcherError as exc:
            fix = f" ({exc.fix})" if exc.fix else ""
            raise ApiError(400, "bad_field", f"matchers[{i}]: {exc}{fix}", field="matchers") from None
        if len(found) != 1:
            raise ApiError(400, "bad_field", f"matchers[{i}]: one matcher per item, got {len(found)} in {item!r}",
                           field="matchers")
        out.append(str(found[0]))
    return out


def _time(body: dict[str, Any], key: str) -> dt.datetime:
    if not isinstance(body[key], str):
        raise ApiError(400, "bad_field", f"{key}: must be a string (RFC 3339 with a zone)", field=key)
    try:
        return parse_time(key, body[key])
    except ApiError as exc:
        raise ApiError(400, "bad_field", exc.detail, field=key) from None


@bp.post("/maintenance")
@require(Role.WRITE)
def create_window():
    """Mute the alerts matching every matcher from `start` (default now; a start in the past holds from now) to
    `end`."""
    check_known(request.args, ())
    svc = services()
    body = json_body(_FIELDS)
    matchers = _matchers(body)
    if "end" not in body:
        raise ApiError(400, "missing_field", "end is required", field="end")
    now = svc.clock.now()
    start = _time(body, "start") if body.get("start") is not None else now
    end = _time(body, "end")
    if end <= start:
        raise ApiError(400, "bad_field", f"end ({maintenance.iso(end)}) must be after start ({maintenance.iso(start)})",
                       field="end")
    start = max(start, now)  # the past is not rewritten: what was sent then was sent
    if end <= start:
        raise ApiError(400, "bad_field", f"end ({maintenance.iso(end)}) is not in the future", field="end")
    comment = body.get("comment") or ""
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise ApiError(400, "bad_field", f"comment: a string of at most {MAX_COMMENT} characters", field="comment")
    actor = (body.get("actor") or "").strip()[:200] or g.principal.name
    with svc.writes.transaction() as conn:
        made = maintenance.create(conn, matchers=matchers, start=start, end=end, comment=comment, now=now,
                                  actor=actor)
    return jsonify(made.as_dict(now)), 201


@bp.get("/maintenance")
@require(Role.READ)
def list_windows():
    """Windows active now and upcoming, by start; `all=true`: every window kept (ended ones too, as long as the
    history), at most the latest 1000 by start."""
    args = request.args
    check_known(args, ("all",))
    every = parse_bool("all", args["all"]) if "all" in args else False
    svc = services()
    now = svc.clock.now()
    with svc.read() as conn:
        found = maintenance.listing(conn, now=now, since=dt.datetime.min.replace(tzinfo=dt.timezone.utc)
                                    if every else None, limit=MAX_LISTED)
    return jsonify({"at": maintenance.iso(now), "windows": [w.as_dict(now) for w in found]})


@bp.post("/maintenance/<int:window_id>/end")
@require(Role.WRITE)
def end_window(window_id: int):
    """End a window now (an upcoming one never starts); the alerts it muted are told at the engine's next tick."""
    check_known(request.args, ())
    svc = services()
    body = json_body(("actor",))
    actor = (body.get("actor") or "").strip()[:200] or g.principal.name
    now = svc.clock.now()
    try:
        with svc.writes.transaction() as conn:
            ended = maintenance.end_early(conn, window_id, now=now, actor=actor)
    except maintenance.WindowError as exc:
        raise ApiError(exc.status, "not_found" if exc.status == 404 else "already_ended", str(exc)) from None
    return jsonify(ended.as_dict(now))


def panel(now: dt.datetime) -> list[dict[str, Any]]:
    """The Now page's maintenance panel (templates/dashboard/now_maintenance.html): windows active or upcoming."""
    svc = services()
    with svc.read() as conn:
        found = maintenance.listing(conn, now=now, limit=50)
    return [{**w.as_dict(now), "starts_in_seconds": (w.start - now).total_seconds(),
             "ends_in_seconds": (w.end - now).total_seconds()} for w in found]
