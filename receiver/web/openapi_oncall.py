"""The OpenAPI description of the on-call operations (who is on call, schedules, overrides, maintenance windows):
paths and schemas merged into the document by openapi.py."""

from __future__ import annotations

from .openapi_build import err as _err, json_body as _json, op as _op, query as _query
from .openapi_schemas import STR, TIME, Schema, array, error_response, nullable, obj, ref

_UNKNOWN = "Unknown query parameters are refused (400 unknown_parameter)."

ONCALL = obj({
    "schedule": {**STR, "description": "a schedule of receiver.yml"},
    "at": {**TIME, "description": "the moment asked about"},
    "person": {**nullable(STR), "description": "a person of receiver.yml `people`; null: nobody on shift"},
    "until": {**nullable(TIME), "description": "when this answer changes next (the shift ends, or an earlier "
                                                "rotation of the schedule starts one); null: never"},
    "source": {**nullable({"type": "string", "enum": ["rotation"]}), "description": "null when nobody"},
}, description="who is on call in one schedule at one moment")

SCHEMAS: dict[str, Schema] = {
    "OnCall": ONCALL,
    "OnCallList": obj({"at": TIME, "oncall": {**array(ref("OnCall")), "description": "every schedule, by name"}}),
}

PATHS: dict[str, dict[str, Schema]] = {
    "/api/v1/oncall": {"get": _op(
        "oncall", "Who is on call now (or `at` a moment): one schedule, or every schedule",
        {"200": _json({"oneOf": [ref("OnCall"), ref("OnCallList")]}, "with `schedule`: its OnCall; without: every "
                                                                        "schedule's, by name"),
         "400": _err("BadRequest"), "404": error_response("not_found: no such schedule in receiver.yml")},
        parameters=[_query("schedule", STR, "a schedule of receiver.yml (default: every schedule)"),
                    _query("at", STR, "RFC 3339 with a zone (`2026-11-23T08:00:00Z`) or Unix seconds; default now")],
        description="Computed from receiver.yml's `people` and `schedules`; reads no database. " + _UNKNOWN)},
    "/api/v1/schedules/{name}.ics": {"get": _op(
        "oncall", "A schedule's next shifts as iCalendar (RFC 5545): one event per shift, times in UTC",
        {"200": {"description": "the calendar", "content": {"text/calendar": {"schema": STR}}},
         "400": _err("BadRequest"), "404": error_response("not_found: no such schedule in receiver.yml")},
        parameters=[{"name": "name", "in": "path", "required": True, "schema": STR,
                     "description": "a schedule of receiver.yml"},
                    _query("days", {"type": "integer", "minimum": 1, "maximum": 366}, "how far ahead, in days [28]")],
        description="From now on; a person's back-to-back shifts are one event, stretches with nobody on shift none.")},
}
