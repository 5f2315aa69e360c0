"""The reusable half of the OpenAPI document: component schemas, parameters and responses, as plain dicts.

Objects the API answers with are strict (every field listed and required, `additionalProperties: false`), so
the tests that validate real answers against them notice a field added, renamed or retyped without the document.
What the API reads from others is lenient where the sender is: Alertmanager's payload tolerates unknown fields.
"""

from __future__ import annotations

from typing import Any

from ..analytics import BANDS
from ..domain import AlertStatus, EventKind, Level, NotificationKind, NotificationStatus
from ..statistics.read_top import TOP_BY as _TOP_BY

Schema = dict[str, Any]

LEVELS = [lv.value for lv in Level]
EVENT_KINDS = [k.value for k in EventKind]
NOTIFICATION_KINDS = [k.value for k in NotificationKind]
NOTIFICATION_STATUSES = [s.value for s in NotificationStatus]
ALERT_STATUSES = [s.value for s in AlertStatus]
TOP_BY = list(_TOP_BY)
HEALTH_BANDS = [name for _, name in BANDS]
# Prometheus notation, units largest first (30s, 5m, 1h30m): the pattern of receiver.fields.parse_duration.
DURATION_PATTERN = r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """The schema, or JSON null (OpenAPI 3.1 is JSON Schema 2020-12: a type list, or anyOf for a $ref)."""
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    out = {**schema, "type": [schema["type"], "null"]}
    if "enum" in schema:
        out["enum"] = [*schema["enum"], None]
    return out


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None, **extra: Any) -> Schema:
    """A strict object: the `required` fields always present, the `optional` ones sometimes, nothing else."""
    return {"type": "object", "required": list(required), "properties": {**required, **(optional or {})},
            "additionalProperties": False, **extra}


def array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def string_map(values: Schema, description: str = "") -> Schema:
    out: Schema = {"type": "object", "additionalProperties": values}
    if description:
        out["description"] = description
    return out


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time"}
ID: Schema = {"type": "integer", "minimum": 1}
LEVEL: Schema = {"type": "string", "enum": LEVELS}
LABELS = string_map(STR)
COUNTS = string_map(INT)
CURSOR: Schema = {"type": ["string", "null"], "pattern": "^[0-9]+$",
                  "description": "pass as `cursor` for the next page; null on the last page"}

ALERT_FIELDS: dict[str, Schema] = {
    "id": ID,
    "fingerprint": {**STR, "description": "Alertmanager's fingerprint (FNV-1a 64 of the sorted labels), hex"},
    "status": {"type": "string", "enum": ALERT_STATUSES},
    "starts_at": TIME,
    "ends_at": nullable(TIME),
    "alertname": STR, "severity": STR, "service": STR, "instance": STR,
    "labels": LABELS, "annotations": LABELS,
    "generator_url": STR,
    "group_key": {**STR, "description": "Alertmanager's groupKey"},
    "group_id": {**STR, "description": "short id of group_key, for `group_id` filters and group ack"},
    "receiver": STR,
    "source": {**STR, "description": "the <name> of /webhook/<name>; empty for /webhook"},
    "external_url": STR,
    "level": LEVEL,
    "route": {**STR, "description": "the route of receiver.yml the occurrence matched"},
    "escalate": {**BOOL, "description": "false for Watchdog and routes with escalate: false"},
    "level_entered_at": TIME,
    "next_action_at": nullable(TIME),
    "timer_started_at": nullable(TIME),
    "escalation_count": INT,
    "repeat_count": INT,
    "first_notified_at": nullable(TIME),
    "first_acked_at": nullable(TIME),
    "acked_at": nullable(TIME),
    "acked_by": nullable(STR),
    "ack_expires_at": nullable(TIME),
    "resolved_at": nullable(TIME),
    "resolved_by": nullable(STR),
    "received_at": TIME,
    "updated_at": TIME,
    "muted_until": {**nullable(TIME), "description": "muted (a route's time interval or a maintenance window) until "
                                                     "then: nothing is sent and the escalation clock waits"},
    "sla_ack_breached_at": {**nullable(TIME), "description": "the ack target of the current level was missed then"},
    "sla_resolve_breached_at": {**nullable(TIME),
                                "description": "the resolve target of the current level was missed then"},
    "acked": BOOL,
}

TIMELINE_EVENT = obj({
    "id": {"type": "string", "pattern": "^(event|notification):[0-9]+$",
           "description": "unique within the timeline: `event:<n>` or `notification:<n>` (the delivery's id)"},
    "at": TIME, "kind": {"type": "string", "enum": EVENT_KINDS},
    "actor": nullable(STR), "comment": nullable(STR),
    "from_level": nullable(LEVEL), "to_level": nullable(LEVEL),
    "details": {"type": ["object", "null"]},
}, description="one entry of an occurrence's timeline and audit trail")

DISTRIBUTION = obj({"count": INT, "mean": nullable(NUM), "min": nullable(NUM), "p50": nullable(NUM),
                    "p90": nullable(NUM), "max": nullable(NUM),
                    "method": {"type": "string", "enum": ["exact", "sketch", "histogram"],
                               "description": "how p50/p90 were computed: docs/statistics.md, \"Percentiles\""}},
                   description="seconds; null when count is 0 (min and max also with method histogram)")

PERIOD = obj({"since": TIME, "until": TIME}, description="occurrences whose starts_at is in [since, until)")

_SLA_TARGET = obj({"target_seconds": {**nullable(NUM), "description": "the default route's target; null: none"},
                   "met": INT, "breached": INT, "pending": INT, "ended": INT,
                   "percent": {**nullable(NUM), "description": "met / (met + breached) × 100; null when both are 0"}})
_SLA_LEVELS = obj({lv: obj({"ack": _SLA_TARGET, "resolve": _SLA_TARGET}) for lv in LEVELS})
SLA = obj({**_SLA_LEVELS["properties"], "by_service": string_map(_SLA_LEVELS, "the same, per service label")},
          description="SLA compliance per level and target: definitions in docs/statistics.md, \"SLA compliance\"")

SUMMARY_FIELDS: dict[str, Schema] = {
    "total": INT,
    "by_severity": COUNTS, "by_level": COUNTS, "by_status": COUNTS,
    "by_service": {**COUNTS, "description": "most alerts first"},
    "acked": {**INT, "description": "occurrences acknowledged at least once"},
    "mtta_seconds": {**ref("Distribution"), "description": "first notification sent → first ack"},
    "mttr_seconds": {**ref("Distribution"), "description": "startsAt → resolution"},
    "escalations": obj({"count": INT, "escalated_alerts": INT, "rate": nullable(NUM)}),
    "notifications": obj({"total": INT, "by_status": COUNTS, "failure_rate": nullable(NUM)}),
    "sla": SLA,
}

TOP_ROW = obj({"alertname": STR, "service": STR, "count": INT}, {
    "fingerprints": {**INT, "description": "by=count"},
    "total_seconds": {**NUM, "description": "by=duration"},
    "max_seconds": {**NUM, "description": "by=duration"},
    "escalations": {**INT, "description": "by=escalations"},
    "noisy": {**INT, "description": "by=noise: resolved without an ack"},
    "noise_ratio": {**NUM, "description": "by=noise"},
    "median_firing_seconds": {**nullable(NUM), "description": "by=noise"},
})

_FACTORS = obj({"resolved": NUM, "critical": NUM, "repair": NUM, "escalation": NUM})
HEALTH_FIELDS: dict[str, Schema] = {
    "service": STR,
    "score": {"type": "number", "minimum": 0, "maximum": 100},
    "band": {"type": "string", "enum": HEALTH_BANDS},
    "inputs": obj({"alerts": INT, "resolved": INT, "critical": INT, "escalated": INT,
                   "mttr_mean_seconds": nullable(NUM)}),
    "factors": _FACTORS,
    "weights": _FACTORS,
    "mttr_seconds": {**ref("Distribution"), "description": "the service's MTTR over the period, as the summary's"},
}

ATTEMPT = obj({
    "attempt": {**ID, "description": "1 for the first try"}, "at": TIME, "duration_ms": nullable(INT),
    "code": {**nullable(INT), "description": "the HTTP status or SMTP reply code answered; null without one"},
    "outcome": {"type": "string", "enum": ["sent", "failed", "dead"]},
    "error": {**nullable(STR), "description": "the redacted reason of a failure, at most 2,000 characters"},
})

NOTIFICATION = obj({
    "id": ID, "channel": STR,
    "kind": {"type": "string", "enum": NOTIFICATION_KINDS},
    "level": {"type": "string", "enum": LEVELS + [""],
              "description": "empty for acknowledged and resolved notices, which go to the channels told"},
    "status": {"type": "string", "enum": NOTIFICATION_STATUSES},
    "attempts": INT,
    "created_at": TIME, "next_attempt_at": nullable(TIME), "last_attempt_at": nullable(TIME),
    "sent_at": nullable(TIME), "give_up_at": nullable(TIME),
    "last_error": nullable(STR), "last_duration_ms": nullable(INT),
    "group_key": STR,
    "target": {**nullable(STR), "description": "the level's person target (`schedule:<name>`, `person:<name>`); null "
                                               "for a plain channel"},
    "person": {**nullable(STR), "description": "who the target resolved to at send time"},
    "person_source": {**nullable({"type": "string", "enum": ["rotation", "override", "person"]}),
                      "description": "how the person was found"},
    "alert_ids": array(ID),
    "claimed": {**BOOL, "description": "a dispatcher holds it under a lease right now"},
}, description="one outbox message: one channel, one or more alerts of a group")

REJECTED_FIELDS: dict[str, Schema] = {
    "id": ID, "received_at": TIME, "source": STR, "status_code": INT,
    "reason": STR, "detail": STR, "content_type": STR,
    "size": {**INT, "description": "bytes received"},
    "sha256": STR,
    "body_truncated": {**BOOL, "description": "only the first MiB was kept: it cannot be replayed"},
    "replayed_at": nullable(TIME), "replay_status": nullable(INT),
}

WIRE_ALERT: Schema = {
    "type": "object", "required": ["status", "labels", "startsAt"],
    "properties": {
        "status": {"type": "string", "enum": ALERT_STATUSES},
        "labels": LABELS, "annotations": LABELS,
        "startsAt": TIME, "endsAt": {**nullable(TIME), "description": "null or 0001-01-01T00:00:00Z: no end yet"},
        "generatorURL": STR,
        "fingerprint": {"type": "string", "pattern": "^[0-9a-fA-F]{0,32}$"},
    },
}

WEBHOOK_PAYLOAD: Schema = {
    "type": "object", "required": ["version", "alerts"],
    "description": "Alertmanager's webhook payload, version 4. Unknown fields are ignored.",
    "properties": {
        "version": {"type": "string", "enum": ["4"]},
        "receiver": STR,
        "status": {"type": "string", "enum": ALERT_STATUSES},
        "alerts": array(ref("WireAlert")),
        "groupKey": STR, "groupLabels": LABELS, "commonLabels": LABELS, "commonAnnotations": LABELS,
        "externalURL": STR,
        "truncatedAlerts": {"type": "integer", "minimum": 0},
    },
}

_OUTCOMES = {name: INT for name in ("new", "new_resolved", "updated", "resolved", "duplicate", "stale")}

TTL: Schema = {"type": ["string", "null"], "pattern": DURATION_PATTERN,
               "description": "the ack expires after it, e.g. 30m (default: the route's ack_ttl)"}
_ACTION_FIELDS = {"actor": {**STR, "description": "defaults to the token's name"}, "comment": STR}

SCHEMAS: dict[str, Schema] = {
    "Error": obj({"error": {**STR, "description": "machine-friendly reason, e.g. not_found, bad_parameter"}}, {
        "detail": {**STR, "description": "what went wrong, for people"},
        "parameter": {**STR, "description": "the query parameter at fault"},
        "allowed": {**array(STR), "description": "the parameters or fields this endpoint knows"},
        "path": {**STR, "description": "the payload field at fault, e.g. alerts[3].startsAt"},
        "dead_letter_id": {**nullable(INT), "description": "the rejected body kept for replay"},
        "fix": {**nullable(STR), "description": "what to write instead"},
        "field": {**STR, "description": "the body field at fault"},
    }),
    "Alert": obj(ALERT_FIELDS, description="one occurrence (firing period) of a fingerprint"),
    "AlertWithTimeline": obj({**ALERT_FIELDS, "timeline": array(ref("TimelineEvent"))}),
    "TimelineEvent": TIMELINE_EVENT,
    "AlertPage": obj({"alerts": array(ref("Alert")), "count": INT, "next_cursor": CURSOR}),
    "ActionResult": obj({
        "changed": {**BOOL, "description": "false when the alert was already in the requested state"},
        "notifications": {**INT, "description": "messages queued by the action"},
        "alert": ref("AlertWithTimeline"),
    }),
    "GroupAckResult": obj({"group_id": STR, "acked": array(ID), "already_acked": array(ID), "notifications": INT}),
    "AckRequest": obj({}, {**_ACTION_FIELDS, "ttl": TTL}),
    "ActionRequest": obj({}, _ACTION_FIELDS),
    "EscalateRequest": obj({}, {**_ACTION_FIELDS, "level": {**nullable(LEVEL),
                                                            "description": "the target; default one level up"}}),
    "GroupAckRequest": {**obj({}, {"group_key": {**STR, "minLength": 1}, "group_id": {**STR, "minLength": 1},
                                   **_ACTION_FIELDS, "ttl": TTL}),
                        "oneOf": [{"required": ["group_key"]}, {"required": ["group_id"]}]},
    "WireAlert": WIRE_ALERT,
    "WebhookPayload": WEBHOOK_PAYLOAD,
    "WebhookResult": obj({"status": {"type": "string", "enum": ["ok"]}, "alerts": INT, "truncated_alerts": INT},
                         _OUTCOMES),
    "ReplayResult": obj({"status": {"type": "string", "enum": ["ok"]}, "alerts": INT}, _OUTCOMES),
    "RejectedWebhook": obj(REJECTED_FIELDS),
    "RejectedWebhookWithBody": obj(REJECTED_FIELDS, {"body": {**STR, "description": "the body, when UTF-8"},
                                                     "body_base64": {**STR, "description": "the body, otherwise"}}),
    "RejectedPage": obj({"rejected": array(ref("RejectedWebhook")), "next_cursor": CURSOR}),
    "Notification": NOTIFICATION,
    "NotificationPage": obj({"notifications": array(ref("Notification")), "count": INT, "next_cursor": CURSOR}),
    "NotificationAttempt": ATTEMPT,
    "NotificationAttempts": obj({"notification_id": ID, "attempts": {**array(ref("NotificationAttempt")),
                                                                     "description": "oldest first"}}),
    "Period": PERIOD,
    "Distribution": DISTRIBUTION,
    "Summary": obj(SUMMARY_FIELDS),
    "SummaryReport": obj({"period": ref("Period"), "source": {
        **STR, "description": "alerts, aggregates+alerts or rollups+aggregates+alerts: where the numbers came from"},
                          **SUMMARY_FIELDS}),
    "TopRow": TOP_ROW,
    "TopReport": obj({
        "period": ref("Period"), "by": {"type": "string", "enum": TOP_BY}, "top": array(ref("TopRow")),
        "flapping": obj({"window_seconds": NUM, "min_occurrences": INT, "fingerprints": array(obj({
            "fingerprint": STR, "alertname": STR, "service": STR, "occurrences": INT, "max_in_window": INT}))}),
    }),
    "Trends": obj({
        "period": ref("Period"), "interval": {"type": "string", "enum": ["hour", "day"]},
        "tz": STR, "group_by": {"type": "string", "enum": ["severity", "service", "level", "none"]},
        "source": STR,
        "buckets": {**array(TIME), "description": "bucket starts, with the offset of tz"},
        "series": string_map(array(INT), "one count per bucket, per value of group_by (`all` for none)"),
        "total": array(INT),
        "totals": COUNTS,
    }),
    "Health": obj(HEALTH_FIELDS, description="0–100; the formula is in docs/statistics.md, \"Service health\""),
    "HealthReport": obj({"period": ref("Period"), **HEALTH_FIELDS}),
    "DailyReport": obj({
        "date": {"type": "string", "format": "date"}, "tz": STR, "period": ref("Period"),
        "summary": ref("Summary"),
        "top": array(ref("TopRow")), "noisy": array(ref("TopRow")), "most_escalated": array(ref("TopRow")),
        "escalations": array(obj({"from": nullable(LEVEL), "to": nullable(LEVEL), "count": INT})),
        "services": {**array(ref("Health")), "description": "least healthy first"},
    }),
    "AlertSummary": obj({k: ALERT_FIELDS[k] for k in (
        "id", "fingerprint", "alertname", "severity", "service", "instance", "status", "level", "starts_at", "ends_at",
        "group_id")}),
    "CorrelationReason": obj({"type": {**STR, "description": "group, instance, service, or a manual link's type"},
                              "score": NUM, "reason": STR}, {
        "seconds_apart": NUM, "manual": BOOL, "link_id": ID,
        "direction": {"type": "string", "enum": ["outgoing", "incoming"]},
        "actor": nullable(STR), "comment": nullable(STR), "created_at": TIME}),
    "Related": obj({
        "alert_id": ID, "window": STR, "count": INT,
        "related": {**array(obj({"alert": ref("AlertSummary"), "type": STR, "score": NUM, "reason": STR,
                                 "relation": {"type": "string", "enum": ["overlapping", "before", "after"]},
                                 "gap_seconds": {**NUM, "description": "between the firing intervals; 0: overlapping"},
                                 "when": {**STR, "description": "firing at the same time | within N minutes before…"},
                                 "reasons": array(ref("CorrelationReason"))})), "description": "best first"},
    }),
    "CorrelationRequest": obj({"alert_id": ID, "related_alert_id": ID}, {
        "type": {"type": "string", "pattern": "^[a-z][a-z0-9_.-]{0,31}$", "default": "manual"},
        "score": {"type": "number", "minimum": 0, "maximum": 1, "default": 1},
        "comment": {"type": "string", "maxLength": 4000}, **_ACTION_FIELDS}),
    "Correlation": obj({"id": ID, "alert_id": ID, "related_alert_id": ID, "type": STR, "score": NUM,
                        "actor": nullable(STR), "comment": nullable(STR), "created_at": TIME}),
    "ExportRow": obj({k: ALERT_FIELDS[k] for k in (
        "id", "fingerprint", "alertname", "severity", "service", "instance", "status", "level", "starts_at", "ends_at",
        "acked_at", "acked_by", "resolved_at", "escalation_count", "labels", "annotations", "group_key", "receiver",
        "source", "first_notified_at", "first_acked_at")} | {  # and the columns for analysis, in their order:
        "time_to_ack_seconds": nullable(NUM), "time_to_resolve_seconds": nullable(NUM), "max_level": LEVEL,
        "route": ALERT_FIELDS["route"], "paged_person": nullable(STR)}, description="one occurrence in an export (CSV: the same columns; labels as "
                                                     "JSON text); the columns are described in docs/http-api.md"),
    "PurgeCount": obj({"older_than": STR, "cutoff": TIME, "dry_run": {"type": "boolean", "enum": [True]},
                       "eligible": {**INT, "description": "occurrences a purge would delete now"}}),
    "Purged": obj({
        "older_than": STR, "cutoff": {**TIME, "description": "now − older_than, rounded down to a UTC midnight"},
        "deleted": obj({k: INT for k in ("alerts", "events", "notification_items", "notifications",
                                         "correlations")}),
        "rollup_rows": INT, "batches": INT,
        "complete": {**BOOL, "description": "false: stopped after the time budget; call again to continue"},
        "seconds": NUM, "longest_batch_seconds": NUM}, {"detail": STR}),
    "PagerDutyEvent": {
        "type": "object", "required": ["event"], "description": "a PagerDuty V3 webhook",
        "properties": {"event": {"type": "object", "required": ["event_type"],
                                 "properties": {"event_type": STR, "data": {"type": "object"},
                                                "agent": {"type": "object"}}}},
    },
    "PagerDutyResult": obj({"status": {"type": "string", "enum": ["applied", "unchanged", "ignored"]}}, {
        "action": {"type": "string", "enum": ["ack", "unack", "resolve"]},
        "alert_id": ID, "reason": STR, "event_type": STR}),
    "Healthy": obj({"status": {"type": "string", "enum": ["healthy"]}}),
    "Readiness": obj({"status": {"type": "string", "enum": ["ready", "not ready"]},
                      "checks": obj({"database": STR}, {"migrations": STR})}),
    "Reloaded": obj({"status": {"type": "string", "enum": ["reloaded"]}, "source": nullable(STR),
                     "workers": {"type": "string", "enum": ["restarting", "this process"]}}),
}


def _query(name: str, schema: Schema, description: str, **extra: Any) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description, **extra}


def _list(item_pattern: str | None = None) -> Schema:
    items: Schema = {"type": "string"} if item_pattern is None else {"type": "string", "pattern": item_pattern}
    return array(items)


_LEVEL_LIST = "^(L1|L2|L3)(,(L1|L2|L3))*$"
_TIME_VALUE = "RFC 3339 with a zone (`2026-11-23T08:00:00Z`, up to 9 fractional digits) or Unix seconds"

PARAMETERS: dict[str, Schema] = {
    "status": _query("status", {"type": "string", "enum": ALERT_STATUSES}, "firing or resolved"),
    "level": _query("level", _list(_LEVEL_LIST), "levels: repeat the parameter or separate with commas",
                    style="form", explode=True),
    "severity": _query("severity", _list(), "severity labels; repeat or separate with commas", explode=True),
    "service": _query("service", _list(), "service labels; repeat or separate with commas", explode=True),
    "alertname": _query("alertname", _list(), "alert names; repeat or separate with commas", explode=True),
    "fingerprint": _query("fingerprint", STR, "one fingerprint"),
    "group_id": _query("group_id", STR, "one Alertmanager group (the alert's group_id)"),
    "since": _query("since", STR, f"starts_at at or after: {_TIME_VALUE}"),
    "until": _query("until", STR, f"starts_at before: {_TIME_VALUE}"),
    "acked": _query("acked", {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]},
                    "acknowledged or not (case-insensitive)"),
    "match": _query("match", _list(), 'Alertmanager matchers on labels, repeatable: `team="db"`, =~, !=, !~',
                    explode=True),
    "cursor": _query("cursor", {"type": "string", "pattern": "^[0-9]+$"}, "the next_cursor of the previous page"),
    "tz": _query("tz", STR, "an IANA time zone (Europe/Paris); default UTC"),
}


def params(*names: str) -> list[Schema]:
    return [{"$ref": f"#/components/parameters/{name}"} for name in names]


def error_response(description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


RESPONSES: dict[str, Schema] = {
    "Unauthorized": {**error_response("no valid token (with tokens configured)"),
                     "headers": {"WWW-Authenticate": {"schema": STR}}},
    "Forbidden": error_response("the token's role does not allow this"),
    "NotFound": error_response("no such resource"),
    "BadRequest": error_response("a bad parameter or body; `error` says which: unknown_parameter, bad_parameter, "
                                 "malformed_json, unknown_field, bad_field, bad_body"),
    "StorageUnavailable": {**error_response("the database is down or locked past database.lock_timeout (or, for "
                                                 "the webhook, too many large bodies at once), or a read ran past "
                                                 "database.query_timeout (`query_timeout`) or waited that long for "
                                                 "its turn among regex-filtered reads (`busy`): retry"),
                           "headers": {"Retry-After": {"schema": STR, "description": "seconds"}}},
    "InternalError": error_response("an unexpected failure (logged)"),
    "HostNotAllowed": error_response("host_not_allowed: without tokens only a loopback Host, server.public_url's "
                                     "host and server.allowed_hosts are served (DNS rebinding)"),
    "TooManyAuthFailures": {**error_response("too_many_auth_failures: this address failed authentication too "
                                             "often within a minute, whatever it presents now"),
                            "headers": {"Retry-After": {"schema": STR, "description": "seconds"}}},
}

SECURITY_SCHEMES: dict[str, Schema] = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "a token of receiver.yml `auth.tokens`; its role must grant the operation's "
                              "`x-required-role` (admin > write > read; webhook only posts webhooks). With no "
                              "tokens configured every operation is open (and the receiver binds loopback only)."},
    "basic": {"type": "http", "scheme": "basic",
              "description": "webhook only, as Alertmanager's http_config can send it: the password is the token"},
    "pagerdutySignature": {"type": "apiKey", "in": "header", "name": "X-PagerDuty-Signature",
                           "description": "`v1=<hex HMAC-SHA256 of the body>` under a pagerduty channel's "
                                          "webhook_secret"},
}
