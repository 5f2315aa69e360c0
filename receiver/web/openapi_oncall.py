"""The OpenAPI description of the on-call operations (who is on call, schedules, overrides, maintenance windows):
paths and schemas merged into the document by openapi.py."""

from __future__ import annotations

from .openapi_build import body as _body, err as _err, id_param as _id, json_body as _json, ok as _ok, op as _op
from .openapi_build import query as _query
from .openapi_schemas import ID, STR, TIME, Schema, array, error_response, nullable, obj, ref

_UNKNOWN = "Unknown query parameters are refused (400 unknown_parameter)."

ONCALL = obj({
    "schedule": {**STR, "description": "a schedule of receiver.yml"},
    "at": {**TIME, "description": "the moment asked about"},
    "person": {**nullable(STR), "description": "a person of receiver.yml `people`; null: nobody on shift"},
    "until": {**nullable(TIME), "description": "when this answer changes next (the shift or override ends, an "
                                                "earlier rotation of the schedule starts a shift, or an override "
                                                "begins); null: never"},
    "source": {**nullable({"type": "string", "enum": ["rotation", "override"]}),
               "description": "override: an override made through the API holds; null when nobody"},
}, description="who is on call in one schedule at one moment")

SCHEMAS: dict[str, Schema] = {
    "OnCall": ONCALL,
    "OnCallList": obj({"at": TIME, "oncall": {**array(ref("OnCall")), "description": "every schedule, by name"}}),
    "NewOverride": obj({
        "person": {**STR, "description": "a person of receiver.yml `people`"},
        "start": {**STR, "description": "RFC 3339 with a zone (or Unix seconds); a start in the past holds from now"},
        "end": {**STR, "description": "RFC 3339 with a zone (or Unix seconds); after start and after now"},
    }, {"actor": {**STR, "description": "defaults to the token's name"}}),
    "Override": obj({
        "id": ID, "schedule": STR, "person": STR,
        "start": {**TIME, "description": "as stored: a start in the past was moved to the moment it was made"},
        "end": TIME, "created_at": TIME, "created_by": nullable(STR),
    }, description="`person` is on call for `schedule` from `start` (inclusive) to `end` (exclusive)"),
    "OverrideList": obj({"schedule": STR, "overrides": {**array(ref("Override")),
                                                        "description": "holding now or to come, earliest first"}}),
}

_SCHEDULE = {"name": "name", "in": "path", "required": True, "schema": STR, "description": "a schedule of receiver.yml"}
_NO_SCHEDULE = error_response("not_found: no such schedule in receiver.yml")

PATHS: dict[str, dict[str, Schema]] = {
    "/api/v1/oncall": {"get": _op(
        "oncall", "Who is on call now (or `at` a moment): one schedule, or every schedule",
        {"200": _json({"oneOf": [ref("OnCall"), ref("OnCallList")]}, "with `schedule`: its OnCall; without: every "
                                                                        "schedule's, by name"),
         "400": _err("BadRequest"), "404": error_response("not_found: no such schedule in receiver.yml")},
        parameters=[_query("schedule", STR, "a schedule of receiver.yml (default: every schedule)"),
                    _query("at", STR, "RFC 3339 with a zone (`2026-11-23T08:00:00Z`) or Unix seconds; default now")],
        description="Computed from receiver.yml's `people` and `schedules` and the overrides stored in the database "
                    "(an override wins while it holds; the latest made where two overlap). " + _UNKNOWN)},
    "/api/v1/schedules/{name}.ics": {"get": _op(
        "oncall", "A schedule's next shifts as iCalendar (RFC 5545): one event per shift, times in UTC",
        {"200": {"description": "the calendar", "content": {"text/calendar": {"schema": STR}}},
         "400": _err("BadRequest"), "404": error_response("not_found: no such schedule in receiver.yml")},
        parameters=[{"name": "name", "in": "path", "required": True, "schema": STR,
                     "description": "a schedule of receiver.yml"},
                    _query("days", {"type": "integer", "minimum": 1, "maximum": 366}, "how far ahead, in days [28]")],
        description="From now on, overrides included; a person's back-to-back shifts are one event, stretches with "
                    "nobody on shift none.")},
    "/api/v1/schedules/{name}/overrides": {
        "post": _op(
            "oncall", "Put a person on call for a schedule from start to end, whatever its rotations say",
            {"201": _ok("Override", "made"), "400": _err("BadRequest"), "404": _NO_SCHEDULE,
             "415": error_response("a body that is not application/json")},
            parameters=[_SCHEDULE], body=_body("NewOverride", required=True),
            description="Stored in the database: it survives restarts and every replica sees it. A start in the past "
                        "holds from now; where overrides overlap the latest made wins."),
        "get": _op(
            "oncall", "A schedule's overrides that hold now or are still to come",
            {"200": _ok("OverrideList"), "400": _err("BadRequest"), "404": _NO_SCHEDULE},
            parameters=[_SCHEDULE], description=_UNKNOWN)},
    "/api/v1/schedules/{name}/overrides/{override_id}": {"delete": _op(
        "oncall", "Delete an override (the rotations hold again for its span)",
        {"204": {"description": "deleted"}, "400": _err("BadRequest"),
         "404": error_response("not_found: no such schedule, or it has no override with this id")},
        parameters=[_SCHEDULE, _id("override_id", "override")])},
}


# --- maintenance windows (web/maintenance_api.py) -------------------------------------------------------------

_MATCHER = {**STR, "maxLength": 1024, "examples": ['service="db"']}
SCHEMAS.update({
    "NewMaintenanceWindow": obj({
        "matchers": {**array(_MATCHER, minItems=1, maxItems=20),
                     "description": "matcher strings as in a route's `matchers:`, one per item; an alert must match "
                                    "all of them (to mute every alert: `alertname=~\".+\"`)"},
        "end": {**STR, "description": "RFC 3339 with a zone (or Unix seconds); after start and after now"},
    }, {
        "start": {**nullable(STR), "description": "RFC 3339 with a zone (or Unix seconds); default now; a start in "
                                                  "the past holds from now"},
        "comment": {**STR, "maxLength": 2000},
        "actor": {**STR, "description": "defaults to the token's name"},
    }),
    "MaintenanceWindow": obj({
        "id": ID, "matchers": array(STR),
        "start": {**TIME, "description": "as stored: a start in the past was moved to the moment it was made"},
        "end": {**TIME, "description": "ending early moves it to that moment"},
        "comment": STR,
        "state": {"type": "string", "enum": ["upcoming", "active", "ended"], "description": "at `at` of the answer"},
        "created_at": TIME, "created_by": nullable(STR),
        "ended_early_by": {**nullable(STR), "description": "who ended it early; null: it runs (ran) to its end"},
    }, description="alerts matching every matcher are muted from `start` (inclusive) to `end` (exclusive): stored, "
                   "on their timeline, told nothing; told at their level when it ends"),
    "MaintenanceWindowList": obj({"at": TIME, "windows": {**array(ref("MaintenanceWindow")),
                                                          "description": "by start"}}),
})

PATHS.update({
    "/api/v1/maintenance": {
        "post": _op(
            "oncall", "Make a maintenance window: mute the alerts matching its matchers from start to end",
            {"201": _ok("MaintenanceWindow", "made"), "400": _err("BadRequest"),
             "415": error_response("a body that is not application/json")},
            body=_body("NewMaintenanceWindow", required=True),
            description="Stored in the database: it survives restarts and every replica sees it. Alerts arriving "
                        "during it are stored and muted at once; alerts firing already are muted at their next "
                        "timer. When it ends, every matching alert still firing and unacknowledged is told at its "
                        "current level."),
        "get": _op(
            "oncall", "Maintenance windows active now and upcoming (`all=true`: ended ones too)",
            {"200": _ok("MaintenanceWindowList"), "400": _err("BadRequest")},
            parameters=[_query("all", {"type": "string", "enum": ["true", "false"]},
                               "true: every window kept (as long as the history), at most the 1000 that start last")],
            description=_UNKNOWN)},
    "/api/v1/maintenance/{window_id}/end": {"post": _op(
        "oncall", "End a maintenance window now (an upcoming one never starts)",
        {"200": _ok("MaintenanceWindow", "ended"), "400": _err("BadRequest"),
         "404": error_response("not_found: no window with this id"),
         "409": error_response("already_ended: the window has ended"),
         "415": error_response("a body that is not application/json")},
        parameters=[_id("window_id", "maintenance window")],
        body={"required": False, "content": {"application/json": {"schema": obj({}, {"actor": STR})}}},
        description="The alerts it muted are looked at again at the engine's next tick: told at their level, "
                    "unless something else still mutes them.")},
})
