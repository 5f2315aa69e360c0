"""Who is on call: GET /api/v1/oncall. Thin: the shifts are computed by engine/oncall.py from receiver.yml's
`people:` and `schedules:` (no database). `alert-receiver oncall` prints the same answers (cli_oncall.py)."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, jsonify, request

from ..domain import Role
from ..engine.oncall import UnknownSchedule, answer, shifts
from .ical import calendar
from .api_errors import ApiError
from .auth import require
from .context import services
from .params import check_known, parse_int, parse_time

bp = Blueprint("oncall_api", __name__, url_prefix="/api/v1")


@bp.get("/oncall")
@require(Role.READ)
def oncall():
    args = request.args
    check_known(args, ("schedule", "at"))
    svc = services()
    at = parse_time("at", args["at"]) if args.get("at") else svc.clock.now()
    schedule = args.get("schedule") or None
    try:
        return jsonify(answer(svc.config, schedule, at))
    except UnknownSchedule:
        raise ApiError(404, "not_found", f"no schedule named {schedule!r} in receiver.yml",
                       parameter="schedule") from None
    except OverflowError:  # a shift boundary past year 9999
        raise ApiError(400, "bad_parameter", f"at: {at.isoformat()} is too far in the past or future",
                       parameter="at") from None


@bp.get("/schedules/<name>.ics")
@require(Role.READ)
def schedule_calendar(name: str):
    """The schedule's shifts from now for `days` days (default 28, at most 366), as iCalendar."""
    args = request.args
    check_known(args, ("days",))
    days = parse_int("days", args.get("days"), default=28, minimum=1, maximum=366)
    svc = services()
    now = svc.clock.now()
    if name not in svc.config.schedules:
        raise ApiError(404, "not_found", f"no schedule named {name!r} in receiver.yml")
    body = calendar(name, shifts(svc.config, name, now, now + dt.timedelta(days=days)), now=now)
    return Response(body, mimetype="text/calendar", headers={
        "Content-Disposition": f'attachment; filename="{name}.ics"'})
