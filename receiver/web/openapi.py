"""GET /api/v1/openapi.json: the OpenAPI 3.1 document of every route of the app.

What each operation takes and answers is written here (schemas in openapi_schemas.py); who may call it is not:
the role comes from the view itself (`auth.require` sets `required_role` on it), so the document cannot drift
from the guard. The document is built from `app.url_map`: an operation is served only for a route that exists,
and `undocumented(app)` / `unrouted(app)` name the routes and descriptions without a counterpart (the tests
require both empty).
"""

from __future__ import annotations

import copy
import re
from typing import Any, Iterator

from flask import Blueprint, Flask, current_app, jsonify

from .. import __version__
from ..domain import Role
from .auth import PUBLIC, open_access
from .dashboard import ENDPOINTS as DASHBOARD_ENDPOINTS
from .openapi_schemas import (DURATION_PATTERN, NOTIFICATION_KINDS, NOTIFICATION_STATUSES, PARAMETERS, RESPONSES,
                              SCHEMAS, SECURITY_SCHEMES, STR, TOP_BY, Schema, error_response, params, ref)
from .openapi_build import body as _body, err as _err, html as _html, id_param as _id, json_body as _json, \
    ok as _ok, op as _op, query as _query
from .openapi_chat import PATHS as CHAT_PATHS, SCHEMAS as CHAT_SCHEMAS, SECURITY_SCHEMES as CHAT_SECURITY
from .openapi_oncall import PATHS as ONCALL_PATHS, SCHEMAS as ONCALL_SCHEMAS

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

# Flask adds /static/<path:filename> to every app that does not say static_folder=None; the receiver ships no
# static files, so that route answers only 404 and is not part of the API. The dashboard's pages (web/dashboard*.py)
# are HTML for people, not API operations: tests/dashboard checks their access.
NOT_API = frozenset({"static"}) | frozenset(DASHBOARD_ENDPOINTS)
_METHODS = ("get", "post", "put", "patch", "delete")
_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _limit(maximum: int, default: int) -> Schema:
    return _query("limit", {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
                  f"page size, at most {maximum}")


_STATS_FILTERS = params("since", "until", "service", "severity", "level", "alertname", "match", "status", "acked")
_UNKNOWN = "Unknown query parameters are refused (400 unknown_parameter)."
_PERIOD = "The period defaults to the 7 days before `until` (default now). " + _UNKNOWN
_LIFECYCLE = {"200": _ok("ActionResult"), "400": _err("BadRequest"), "404": _err("NotFound"),
              "409": error_response("the action makes no sense in the alert's state (e.g. it is resolved)"),
              "415": error_response("a body that is not application/json"), "503": _err("StorageUnavailable")}
_WEBHOOK_RESPONSES = {
    "200": _ok("WebhookResult", "stored and committed; counts per outcome (new, updated, resolved, duplicate, …)"),
    "400": error_response("malformed_json: not JSON, not UTF-8, or nested too deep (kept as a dead letter)"),
    "413": error_response("body_too_large: above server.max_body_size"),
    "415": error_response("unsupported_media_type: a Content-Type other than application/json"),
    "422": error_response("invalid_payload or unsupported_version; `path` names the field"),
    "503": _err("StorageUnavailable"),
}
_WEBHOOK_DESCRIPTION = ("Answers 200 only after the transaction that stored the alerts has committed; 503 with "
                        "Retry-After when a retry can help; 4xx only for bodies that can never succeed, each kept "
                        "as a dead letter (`dead_letter_id`). `alerts: []` is a 200 no-op.")

_EXPORT = {
    "200": {"description": "the rows, as an attachment (Content-Disposition), oldest first", "content": {
        "text/csv": {"schema": {**STR, "description": "a header line, then one line per occurrence"}},
        "application/json": {"schema": {"type": "array", "items": ref("ExportRow")}},
        "application/x-ndjson": {"schema": {**STR, "description": "one ExportRow object a line"}}}},
    "400": _err("BadRequest"), "503": _err("StorageUnavailable"),
}
_EXPORT_PARAMS = params("status", "level", "severity", "service", "alertname", "fingerprint", "group_id", "since",
                        "until", "acked", "match") + [
    _query("format", {"type": "string", "enum": ["csv", "json", "ndjson"], "default": "csv"}, "the file format")]
_EXPORT_DESCRIPTION = ("The filters of GET /api/v1/alerts. Cells a spreadsheet would evaluate get a leading "
                       "apostrophe. " + _UNKNOWN)

PATHS: dict[str, dict[str, Schema]] = {
    "/webhook": {"post": _op("webhook", "Receive an Alertmanager webhook (payload v4)", _WEBHOOK_RESPONSES,
                             body=_body("WebhookPayload", required=True), description=_WEBHOOK_DESCRIPTION)},
    "/webhook/{name}": {"post": _op(
        "webhook", "Receive an Alertmanager webhook, keeping <name> as its source", _WEBHOOK_RESPONSES,
        parameters=[{"name": "name", "in": "path", "required": True, "schema": STR,
                     "description": "recorded as the alerts' `source`"}],
        body=_body("WebhookPayload", required=True), description=_WEBHOOK_DESCRIPTION)},
    "/webhooks/pagerduty": {"post": _op(
        "webhook", "Mirror acks and resolutions made in PagerDuty (V3 webhook)", {
            "200": _ok("PagerDutyResult", "applied, unchanged, or ignored (not ours, or nothing to do)"),
            "400": error_response("malformed_event"), "401": error_response("bad_signature"),
            "404": error_response("not_configured: no pagerduty channel has a webhook_secret"),
            "413": error_response("body_too_large: over 1 MiB"), "503": _err("StorageUnavailable")},
        body=_body("PagerDutyEvent", required=True), security=[{"pagerdutySignature": []}])},
    "/api/v1/alerts": {"get": _op(
        "alerts", "History of occurrences, filtered, newest first, in keyset pages",
        {"200": _ok("AlertPage"), "400": _err("BadRequest")},
        parameters=params("status", "level", "severity", "service", "alertname", "fingerprint", "group_id", "since",
                          "until", "acked", "match") + [
            _limit(1000, 100), _query("order", {"type": "string", "enum": ["desc", "asc"], "default": "desc"},
                                      "by id: desc (newest first) or asc")] + params("cursor"),
        description=_UNKNOWN)},
    "/api/v1/alerts/{alert_id}": {"get": _op(
        "alerts", "One occurrence with its timeline", {"200": _ok("AlertWithTimeline"), "400": _err("BadRequest"),
                                                       "404": _err("NotFound")},
        parameters=[_id("alert_id", "alert")])},
    "/api/v1/alerts/{alert_id}/ack": {"post": _op(
        "lifecycle", "Acknowledge: stop escalation and repeats (until `ttl`, if given)", _LIFECYCLE,
        parameters=[_id("alert_id", "alert")], body=_body("AckRequest"))},
    "/api/v1/alerts/{alert_id}/unack": {"post": _op(
        "lifecycle", "Undo an ack: the current level is told again and its timer restarts", _LIFECYCLE,
        parameters=[_id("alert_id", "alert")], body=_body("ActionRequest"))},
    "/api/v1/alerts/{alert_id}/resolve": {"post": _op(
        "lifecycle", "Resolve by hand: everything stops; the channels told hear it", _LIFECYCLE,
        parameters=[_id("alert_id", "alert")], body=_body("ActionRequest"))},
    "/api/v1/alerts/{alert_id}/escalate": {"post": _op(
        "lifecycle", "Escalate one level up, or to `level`, at once (an ack does not survive it)", _LIFECYCLE,
        parameters=[_id("alert_id", "alert")], body=_body("EscalateRequest"),
        description="409 not_above when the target is not above the current level.")},
    "/api/v1/groups/ack": {"post": _op(
        "lifecycle", "Acknowledge every open occurrence of an Alertmanager group",
        {"200": _ok("GroupAckResult"), "400": _err("BadRequest"),
         "415": error_response("a body that is not application/json"), "503": _err("StorageUnavailable")},
        body=_body("GroupAckRequest", required=True))},
    "/a/{token}": {
        "get": _op("lifecycle", "One-click ack link: the confirm page (a GET never acknowledges)", {
            "200": _html("the confirm form, or why there is nothing to acknowledge"),
            "404": _html("a forged, tampered or expired link, or an alert that no longer exists")},
            parameters=[{"name": "token", "in": "path", "required": True, "schema": STR,
                         "description": "signed alert id and expiry, from a message"}], security=[]),
        "post": _op("lifecycle", "One-click ack link: acknowledge", {
            "200": _html("acknowledged (or already)"), "404": _html("a bad link"),
            "409": _html("the alert is resolved"), "503": _html("the database is unavailable; try again")},
            parameters=[{"name": "token", "in": "path", "required": True, "schema": STR}],
            body={"required": False, "content": {"application/x-www-form-urlencoded": {"schema": {
                "type": "object", "properties": {"actor": {"type": "string", "maxLength": 100}}}}}},
            security=[]),
    },
    "/api/v1/alerts/{alert_id}/related": {"get": _op(
        "alerts", "Correlated occurrences: same group at the same time, same instance or service in a window, manual",
        {"200": _ok("Related"), "400": _err("BadRequest"), "404": _err("NotFound")},
        parameters=[_id("alert_id", "alert"),
                    _query("window", {"type": "string", "pattern": DURATION_PATTERN, "default": "30m"},
                           "how far apart starts may be, 1s to 24h"),
                    _limit(500, 50)], description=_UNKNOWN)},
    "/api/v1/correlations": {"post": _op(
        "alerts", "Link two occurrences by hand (undirected per type)", {
            "201": _ok("Correlation", "linked"), "400": _err("BadRequest"),
            "404": error_response("no such alert"), "409": error_response("duplicate: already linked with this type"),
            "415": error_response("a body that is not application/json"), "503": _err("StorageUnavailable")},
        body=_body("CorrelationRequest", required=True))},
    "/api/v1/alerts/export.csv": {"get": _op(
        "alerts", "Export the filtered history, streamed (CSV unless `format` says otherwise)", _EXPORT,
        parameters=_EXPORT_PARAMS, description=_EXPORT_DESCRIPTION)},
    "/api/v1/alerts/export": {"get": _op(
        "alerts", "Export the filtered history, streamed (`format`: csv, json or ndjson)", _EXPORT,
        parameters=_EXPORT_PARAMS, description=_EXPORT_DESCRIPTION)},
    "/api/v1/history": {"delete": _op(
        "operations", "Retention on demand: delete (after rolling up) the occurrences older than `older_than`",
        {"200": _json({"oneOf": [ref("Purged"), ref("PurgeCount")]}, "what was deleted, or with dry_run what "
                                                                      "would be"),
         "400": _err("BadRequest"), "503": _err("StorageUnavailable")},
        parameters=[{**_query("older_than", {"type": "string", "pattern": DURATION_PATTERN},
                              "at least 1d, e.g. 90d"), "required": True},
                    _query("dry_run", PARAMETERS["acked"]["schema"], "only count (true/false)")],
        description="Works at most about 20 s a request; `complete: false` means call again. " + _UNKNOWN)},
    "/api/v1/notifications": {"get": _op(
        "notifications", "Delivery history: pending, failing, sent and dead messages, newest first",
        {"200": _ok("NotificationPage"), "400": _err("BadRequest")},
        parameters=[_query("status", {"type": "string", "enum": NOTIFICATION_STATUSES}, "delivery status"),
                    _query("channel", STR, "a channel of receiver.yml"),
                    _query("kind", {"type": "string", "enum": NOTIFICATION_KINDS}, "why it was sent"),
                    _query("alert_id", {"type": "integer", "minimum": 1}, "messages about this occurrence")]
        + params("since", "until") + [_limit(1000, 100)] + params("cursor"),
        description="`since`/`until` apply to created_at. " + _UNKNOWN)},
    "/api/v1/notifications/{notification_id}": {"get": _op(
        "notifications", "One delivery with attempts, timings and last error",
        {"200": _ok("Notification"), "404": _err("NotFound")}, parameters=[_id("notification_id", "notification")])},
    "/api/v1/notifications/{notification_id}/attempts": {"get": _op(
        "notifications", "Every delivery attempt of one notification: time, duration, status code, outcome, error",
        {"200": _ok("NotificationAttempts"), "404": _err("NotFound")},
        parameters=[_id("notification_id", "notification")])},
    "/api/v1/notifications/{notification_id}/retry": {"post": _op(
        "notifications", "Send a failed or dead notification again now, with a fresh give_up_after",
        {"200": _ok("Notification"), "404": _err("NotFound"),
         "409": error_response("not_retryable: only failed or dead notifications can be retried")},
        parameters=[_id("notification_id", "notification")])},
    "/api/v1/webhooks/rejected": {"get": _op(
        "webhook", "Dead letters: webhook bodies refused, with their reason, newest first",
        {"200": _ok("RejectedPage"), "400": _err("BadRequest")},
        parameters=[_limit(1000, 100)] + params("cursor"), description=_UNKNOWN)},
    "/api/v1/webhooks/rejected/{rejected_id}": {"get": _op(
        "webhook", "One dead letter with its body", {"200": _ok("RejectedWebhookWithBody"), "404": _err("NotFound")},
        parameters=[_id("rejected_id", "rejected webhook")])},
    "/api/v1/webhooks/rejected/{rejected_id}/replay": {"post": _op(
        "webhook", "Ingest a dead letter again, e.g. after a fix", {
            "200": _ok("ReplayResult"), "404": _err("NotFound"),
            "409": error_response("body_truncated: only the first part of the body was kept"),
            "400": error_response("malformed_json: it still cannot be parsed"),
            "422": error_response("invalid_payload or unsupported_version: it still is not a v4 payload")},
        parameters=[_id("rejected_id", "rejected webhook")])},
    "/api/v1/stats/summary": {"get": _op(
        "stats", "Counts by severity, level, status and service; MTTA and MTTR; escalation and failure rates",
        {"200": _ok("SummaryReport"), "400": _err("BadRequest")}, parameters=_STATS_FILTERS, description=_PERIOD)},
    "/api/v1/stats/top": {"get": _op(
        "stats", "Most frequent, longest, most escalated or noisiest alerts, and flapping fingerprints",
        {"200": _ok("TopReport"), "400": _err("BadRequest")},
        parameters=_STATS_FILTERS + [
            _query("by", {"type": "string", "enum": TOP_BY, "default": "count"}, "what to rank by"),
            _limit(500, 10),
            _query("flap_window", {"type": "string", "default": "1h", "pattern": DURATION_PATTERN},
                   "a fingerprint flaps when it starts flap_min times within this window"),
            _query("flap_min", {"type": "integer", "minimum": 2, "maximum": 1000, "default": 3}, "see flap_window")],
        description=_PERIOD)},
    "/api/v1/stats/trends": {"get": _op(
        "stats", "Counts per hour or day (in a time zone), per severity, service or level",
        {"200": _ok("Trends"), "400": _err("BadRequest")},
        parameters=_STATS_FILTERS + [
            _query("interval", {"type": "string", "enum": ["hour", "day"], "default": "hour"}, "bucket size"),
            _query("group_by", {"type": "string", "enum": ["severity", "service", "level", "none"],
                                "default": "severity"}, "one series per value")] + params("tz"),
        description=_PERIOD + " At most 5000 buckets (400 too_many_buckets).")},
    "/api/v1/stats/services/{service}/health": {"get": _op(
        "stats", "A service's health: a 0–100 score with its inputs and a band",
        {"200": _ok("HealthReport"), "400": _err("BadRequest")},
        parameters=[{"name": "service", "in": "path", "required": True, "schema": STR,
                     "description": "the service label (may contain /)"}] + params("since", "until"),
        description=_PERIOD)},
    "/api/v1/reports/daily": {"get": _op(
        "stats", "One day's report: summary, top, noisy and most escalated alerts, escalations, service health",
        {"200": _ok("DailyReport"), "400": _err("BadRequest")},
        parameters=[_query("date", {"type": "string", "format": "date"}, "YYYY-MM-DD; default yesterday in tz")]
        + params("tz") + [_limit(100, 10)], description=_UNKNOWN)},
    "/api/v1/openapi.json": {"get": _op(
        "meta", "This document", {"200": _json({"type": "object"}, "the OpenAPI 3.1 document")}, security=[])},
    "/-/healthy": {"get": _op("operations", "The process serves (says nothing of the database)",
                              {"200": _ok("Healthy")}, security=[])},
    "/-/ready": {"get": _op("operations", "The database answers and its schema is at the migration head", {
        "200": _ok("Readiness"), "503": _ok("Readiness", "not ready: `checks` says why")}, security=[])},
    "/-/reload": {"post": _op("operations", "Re-read receiver.yml; an invalid file is refused, the running one stays", {
        "200": _ok("Reloaded"), "400": error_response("invalid_config: every problem, in `detail`")})},
    "/metrics": {"get": _op("operations", "Prometheus metrics (text exposition format 0.0.4)", {
        "200": {"description": "metrics", "content": {"text/plain": {"schema": STR}}}}, security=[],
        description="Open unless `auth.metrics_role` names a role.")},
}


PATHS.update(ONCALL_PATHS)
PATHS.update(CHAT_PATHS)


# --- the document -----------------------------------------------------------------------------------------


def openapi_path(rule: str) -> str:
    """Werkzeug's `/alerts/<int:alert_id>` → OpenAPI's `/alerts/{alert_id}`."""
    return _CONVERTER.sub(r"{\1}", rule)


def routed(app: Flask) -> Iterator[tuple[str, str, Any]]:
    """(OpenAPI path, method, view) for every route of the app that is part of the API."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint in NOT_API:
            continue
        for method in sorted(m.lower() for m in rule.methods or ()):
            if method in _METHODS:
                yield openapi_path(rule.rule), method, app.view_functions[rule.endpoint]


def undocumented(app: Flask) -> list[tuple[str, str]]:
    return sorted((path, method) for path, method, _ in routed(app) if method not in PATHS.get(path, {}))


def unrouted(app: Flask) -> list[tuple[str, str]]:
    have = {(path, method) for path, method, _ in routed(app)}
    return sorted((path, method) for path, ops in PATHS.items() for method in ops if (path, method) not in have)


def _access(operation: Schema, view: Any, config: Any) -> Schema:
    """The operation with the security, role and 401/403/500 answers its view really has."""
    op = copy.deepcopy(operation)
    role: Role | None = getattr(view, "required_role", None)
    role_setting = getattr(view, "role_setting", None)
    if role is None and role_setting is not None:  # open unless the config names a role (auth.metrics_role)
        role = role_setting(config)
    if role is not None:
        op["x-required-role"] = role.value
        op["security"] = [{"bearer": []}, {"basic": []}] if role is Role.WEBHOOK else [{"bearer": []}]
        op["description"] = (f"Role: `{role.value}`. " + op.get("description", "")).strip()
        op["responses"].setdefault("401", _err("Unauthorized"))
        op["responses"].setdefault("403", _err("Forbidden"))
        op["responses"].setdefault("429", _err("TooManyAuthFailures"))
    if role is not None and role is not Role.WEBHOOK:
        # Every guarded API route reads or writes the database: down or locked is a 503 (errors.py).
        op["responses"].setdefault("503", _err("StorageUnavailable"))
    op["responses"].setdefault("500", _err("InternalError"))
    op["responses"] = dict(sorted(op["responses"].items()))
    return op


_ANY_HOST = ("/-/healthy", "/-/ready")  # probes send the pod's address (web/auth.py's Host check lets them in)


def document(app: Flask) -> dict[str, Any]:
    paths: dict[str, dict[str, Schema]] = {}
    for path, method, view in sorted(routed(app), key=lambda r: r[:2]):
        if method in PATHS.get(path, {}):
            op = _access(PATHS[path][method], view, app.extensions["alert_receiver"].config)
            if path not in _ANY_HOST:
                op["responses"] = dict(sorted({**op["responses"], "421": _err("HostNotAllowed")}.items()))
            paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "alert-receiver", "version": __version__,
                 "description": "Prometheus Alertmanager webhook receiver: durable ingest, L3 → L2 → L1 "
                                "escalation, routing, history and statistics. Errors are JSON: "
                                '`{"error": "<reason>", "detail": "…"}`, sometimes with `parameter`, `allowed`, '
                                "`field`, `path`, `dead_letter_id` or `fix`. An empty query parameter (`?limit=`) is the "
                                "same as an absent one. Times are RFC 3339 in UTC (`Z`), "
                                "except trend buckets, which carry the offset of their `tz`."},
        "servers": [{"url": "/"}],
        "tags": [{"name": n} for n in ("webhook", "alerts", "lifecycle", "notifications", "stats", "oncall",
                                       "integrations", "operations", "meta")],
        "paths": paths,
        "components": {"schemas": copy.deepcopy({**SCHEMAS, **ONCALL_SCHEMAS, **CHAT_SCHEMAS}),
                       "parameters": copy.deepcopy(PARAMETERS), "responses": copy.deepcopy(RESPONSES),
                       "securitySchemes": copy.deepcopy({**SECURITY_SCHEMES, **CHAT_SECURITY})},
    }


@bp.get("/openapi.json")
@open_access(PUBLIC)
def openapi_json():
    """Open to everyone: the document says what exists, never anything stored."""
    return jsonify(document(current_app))

