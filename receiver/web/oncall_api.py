"""Who is on call: GET /api/v1/oncall and a schedule's calendar (GET /api/v1/schedules/<name>.ics), and the
schedule overrides made at run time (POST, GET, DELETE /api/v1/schedules/<name>/overrides). Thin: the shifts are
computed by engine/oncall.py from receiver.yml's `people:` and `schedules:` and the overrides stored in the
database (store/schedule_overrides.py). `alert-receiver oncall` prints the same answers (cli_oncall.py)."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, g, jsonify, request

from ..domain import Role
from ..engine.oncall import UnknownSchedule, answer, shifts
from ..store import schedule_overrides
from .ical import calendar
from .api_errors import ApiError
from .auth import require
from .context import services
from .lifecycle_api import json_body
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
    with svc.read() as conn:  # every override not ended by `at`: one starting later cuts the answer's `until`
        overrides = schedule_overrides.overlapping(conn, at, None, [schedule] if schedule else None)
    try:
        return jsonify(answer(svc.config, schedule, at, overrides))
    except UnknownSchedule:
        raise ApiError(404, "not_found", f"no schedule named {schedule!r} in receiver.yml",
                       parameter="schedule") from None
    except OverflowError:  # a shift boundary past year 9999
        raise ApiError(400, "bad_parameter", f"at: {at.isoformat()} is too far in the past or future",
                       parameter="at") from None


def _known(name: str) -> None:
    if name not in services().config.schedules:
        raise ApiError(404, "not_found", f"no schedule named {name!r} in receiver.yml")


@bp.get("/schedules/<name>.ics")
@require(Role.READ)
def schedule_calendar(name: str):
    """The schedule's shifts from now for `days` days (default 28, at most 366), as iCalendar."""
    args = request.args
    check_known(args, ("days",))
    days = parse_int("days", args.get("days"), default=28, minimum=1, maximum=366)
    svc = services()
    now = svc.clock.now()
    _known(name)
    end = now + dt.timedelta(days=days)
    with svc.read() as conn:
        overrides = schedule_overrides.overlapping(conn, now, end, [name])
    body = calendar(name, shifts(svc.config, name, now, end, overrides=overrides), now=now)
    return Response(body, mimetype="text/calendar", headers={
        "Content-Disposition": f'attachment; filename="{name}.ics"'})


# --- overrides -------------------------------------------------------------------------------------------------

_FIELDS = ("person", "start", "end", "actor")


@bp.post("/schedules/<name>/overrides")
@require(Role.WRITE)
def create_override(name: str):
    """`person` is on call for the schedule from `start` to `end`, whatever its rotations say."""
    check_known(request.args, ())
    svc = services()
    _known(name)
    body = json_body(_FIELDS)
    for key in ("person", "start", "end"):
        if key not in body:
            raise ApiError(400, "missing_field", f"{key} is required", field=key)
        if not isinstance(body[key], str):
            raise ApiError(400, "bad_field", f"{key}: must be a string", field=key)
    person = body["person"]
    if person not in svc.config.people:
        known = ", ".join(sorted(svc.config.people)) or "none"
        raise ApiError(400, "bad_field", f"person: {person!r} is not in receiver.yml's people (people: {known})",
                       field="person")
    start, end = (_time(body, key) for key in ("start", "end"))
    actor = (body.get("actor") or "").strip() or g.principal.name
    now = svc.clock.now()
    try:
        with svc.writes.transaction() as conn:
            made = schedule_overrides.create(conn, schedule=name, person=person, start=start, end=end, now=now,
                                             actor=actor)
    except schedule_overrides.EmptyOverride as exc:
        raise ApiError(400, "bad_field", f"end: {exc}", field="end") from None
    # A database that is down or locked: errors.py answers 503 with Retry-After for every route.
    return jsonify(schedule_overrides.as_dict(made, created_at=now, created_by=actor)), 201


def _time(body: dict, key: str) -> dt.datetime:
    try:
        value = parse_time(key, body[key])
    except ApiError as exc:
        raise ApiError(400, "bad_field", exc.detail, field=key) from None
    return value


@bp.get("/schedules/<name>/overrides")
@require(Role.READ)
def list_overrides(name: str):
    """The schedule's overrides that hold now or are still to come, earliest first."""
    check_known(request.args, ())
    svc = services()
    _known(name)
    with svc.read() as conn:
        found = schedule_overrides.listing(conn, name, since=svc.clock.now())
    return jsonify({"schedule": name, "overrides": found})


@bp.delete("/schedules/<name>/overrides/<int:override_id>")
@require(Role.WRITE)
def delete_override(name: str, override_id: int):
    check_known(request.args, ())
    svc = services()
    _known(name)
    with svc.writes.transaction() as conn:
        deleted = schedule_overrides.delete(conn, name, override_id)
    if not deleted:
        raise ApiError(404, "not_found", f"schedule {name!r} has no override with id {override_id}")
    return Response(status=204)
