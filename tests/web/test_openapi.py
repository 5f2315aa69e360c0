"""GET /api/v1/openapi.json: a valid OpenAPI 3.1 document of exactly the app's routes, with the role each view
really requires — and the API's real answers, over a realistic session on both backends, validated against it."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import pathlib
import re

import pytest
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.exceptions import OpenAPIError
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from prometheus_client import CollectorRegistry
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from receiver.app import create_app
from receiver.channels.base import DeliveryError
from receiver.channels.pagerduty import dedup_key
from receiver.config import load_config
from receiver.fields import _DURATION_RE
from receiver.web import openapi
from receiver.web.openapi_schemas import DURATION_PATTERN

from ..engine.harness import Ladder
from ..support.fixtures import TOKEN, raw
from .test_slack_interactions import SECRET as SLACK_SECRET, form as slack_form, payload as slack_payload, \
    sign as slack_sign
from .test_telegram_webhook import CHAT as TG_CHAT, SECRET as TG_SECRET, TOKEN as TG_TOKEN, \
    headers as tg_headers, update as tg_update
from .test_twilio_sms_webhook import TOKEN as TWILIO_TOKEN, reply as sms_reply, sign as sms_sign

TOKENS = {"webhook": TOKEN, "read": "read-token-0123", "write": "write-token-89ab", "admin": "admin-token-4567"}
PD_SECRET = "pd-webhook-secret-123"
JSON = "application/json"


# --- the document -----------------------------------------------------------------------------------------


@pytest.fixture
def plain_app(tmp_path, clock):
    """An app on an empty SQLite file: enough for everything that does not read the database."""
    config = load_config(None, env={"RECEIVER_DATABASE_URL": f"sqlite:///{tmp_path}/empty.db"})
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    yield app
    app.extensions["alert_receiver"].db.dispose()


def served(app) -> dict:
    resp = app.test_client().get("/api/v1/openapi.json")
    assert resp.status_code == 200 and resp.mimetype == JSON
    return resp.get_json()


def operations(doc: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, ops in doc["paths"].items() for method in ops}


def test_the_document_is_valid_openapi_3_1(plain_app):
    doc = served(plain_app)
    assert doc["openapi"].startswith("3.1")
    errors = [e.message for e in OpenAPIV31SpecValidator(doc).iter_errors()]
    assert errors == []
    OpenAPI.from_dict(doc)  # and openapi-core, which validates the answers below, accepts it


def test_every_route_is_documented_with_its_methods_and_nothing_else(plain_app):
    routes = set()
    for rule in plain_app.url_map.iter_rules():
        if rule.endpoint in openapi.NOT_API:  # Flask's static route and the dashboard's HTML pages
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        routes |= {(path, m.lower()) for m in rule.methods if m not in ("HEAD", "OPTIONS")}
    doc = served(plain_app)
    assert operations(doc) == routes
    assert openapi.undocumented(plain_app) == [] and openapi.unrouted(plain_app) == []
    assert {("/webhook/{name}", "post"), ("/a/{token}", "get"), ("/a/{token}", "post"), ("/-/reload", "post"),
            ("/api/v1/stats/services/{service}/health", "get"), ("/api/v1/openapi.json", "get")} <= routes


def test_a_route_nobody_described_is_named(plain_app):
    from flask import Blueprint

    extra = Blueprint("extra", __name__)
    extra.add_url_rule("/api/v1/surprise/<int:thing_id>", "surprise", lambda thing_id: "", methods=["GET", "DELETE"])
    plain_app.register_blueprint(extra)
    assert openapi.undocumented(plain_app) == [("/api/v1/surprise/{thing_id}", "delete"),
                                               ("/api/v1/surprise/{thing_id}", "get")]
    assert "/api/v1/surprise/{thing_id}" not in served(plain_app)["paths"]


def test_roles_and_security_come_from_the_views(plain_app):
    doc = served(plain_app)
    views = {(openapi.openapi_path(r.rule), m.lower()): plain_app.view_functions[r.endpoint]
             for r in plain_app.url_map.iter_rules() for m in r.methods}
    for (path, method) in operations(doc):
        op = doc["paths"][path][method]
        role = getattr(views[(path, method)], "required_role", None)
        if role is None:
            assert "x-required-role" not in op and {"bearer": []} not in op["security"], (path, method)
            signed = getattr(views[(path, method)], "access", None) == "signature"  # refused by signature: 401
            assert "401" not in op["responses"] or signed, (path, method)
        else:
            assert op["x-required-role"] == role.value, (path, method)
            assert {"bearer": []} in op["security"] and {"401", "403"} <= set(op["responses"]), (path, method)
        assert "500" in op["responses"], (path, method)
    roles = {(p, m): doc["paths"][p][m].get("x-required-role") for p, m in operations(doc)}
    assert roles[("/webhook", "post")] == "webhook" and roles[("/-/reload", "post")] == "admin"
    assert roles[("/api/v1/alerts/{alert_id}/ack", "post")] == "write"
    assert roles[("/api/v1/webhooks/rejected/{rejected_id}/replay", "post")] == "admin"
    assert roles[("/api/v1/openapi.json", "get")] is None and roles[("/-/healthy", "get")] is None
    assert {"basic": []} in doc["paths"]["/webhook"]["post"]["security"]
    assert doc["paths"]["/webhooks/pagerduty"]["post"]["security"] == [{"pagerdutySignature": []}]
    assert doc["paths"]["/integrations/slack/interactions"]["post"]["security"] == [{"slackSignature": []}]
    assert doc["paths"]["/integrations/telegram"]["post"]["security"] == [{"telegramSecretToken": []}]
    assert doc["paths"]["/integrations/twilio/sms"]["post"]["security"] == [{"twilioSignature": []}]


def test_the_duration_pattern_is_the_one_the_receiver_parses():
    assert DURATION_PATTERN == _DURATION_RE.pattern


def test_an_answer_that_does_not_match_fails_validation(plain_app):
    """The validation below has teeth: a missing field, an extra one or a wrong type is an error."""
    spec = OpenAPI.from_dict(served(plain_app))
    request = WerkzeugOpenAPIRequest(Request(EnvironBuilder(path="/-/healthy").get_environ()))
    good = Response(json.dumps({"status": "healthy"}), mimetype=JSON)
    spec.validate_response(request, WerkzeugOpenAPIResponse(good))
    for body in ({"status": "fine"}, {"status": "healthy", "extra": 1}, {}):
        with pytest.raises(OpenAPIError):
            spec.validate_response(request, WerkzeugOpenAPIResponse(Response(json.dumps(body), mimetype=JSON)))
    with pytest.raises(OpenAPIError):  # a status the operation does not document
        spec.validate_response(request, WerkzeugOpenAPIResponse(Response("{}", status=418, mimetype=JSON)))


def test_not_ready_answers_as_documented(plain_app):
    api = Api(plain_app)
    body = api.call("GET", "/-/ready", expect=503).get_json()
    assert body["status"] == "not ready"


# --- the API's answers ------------------------------------------------------------------------------------


def _utf8(data: bytes) -> str:
    return data.decode("utf-8")


class Api:
    """Calls the app through its test client and validates every request and answer against the served document.
    `valid=False`: the document itself refuses the request (what the API refuses with a 4xx)."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        # openapi-core decodes text/plain and text/html itself; the export's other text formats likewise.
        text = {"text/csv": _utf8, "application/x-ndjson": _utf8, "text/calendar": _utf8, "text/xml": _utf8}
        self.spec = OpenAPI.from_dict(served(app), config=Config(extra_media_type_deserializers=text))
        self.adapter = app.url_map.bind("localhost")
        self.seen: dict[tuple[str, str], set[int]] = {}

    def call(self, method: str, path: str, *, expect: int, token: str | None = None, valid: bool = True,
             headers: dict | None = None, **kw):
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        resp = self.client.open(path, method=method, headers=headers, **kw)
        assert resp.status_code == expect, (method, path, resp.status_code, resp.get_data(as_text=True)[:800])
        # The view consumed the request's body: validate a second, identical request.
        request = WerkzeugOpenAPIRequest(Request(EnvironBuilder(path=path, method=method, headers=headers,
                                                                **kw).get_environ()))
        if valid:
            self.spec.validate_request(request)
        else:
            with pytest.raises(OpenAPIError):
                self.spec.validate_request(request)
        self.spec.validate_response(request, WerkzeugOpenAPIResponse(resp))
        rule, _ = self.adapter.match(path, method=method, return_rule=True)
        self.seen.setdefault((openapi.openapi_path(rule.rule), method.lower()), set()).add(resp.status_code)
        return resp

    def get(self, path: str, *, expect: int = 200, token: str | None = TOKENS["read"], **kw):
        return self.call("GET", path, expect=expect, token=token, **kw)

    def post(self, path: str, body=None, *, expect: int = 200, token: str | None = TOKENS["write"], **kw):
        if body is not None and not isinstance(body, bytes):
            kw.setdefault("content_type", JSON)
            body = json.dumps(body).encode()
        if body is not None:
            kw["data"] = body
        return self.call("POST", path, expect=expect, token=token, **kw)

    def delete(self, path: str, *, expect: int = 200, token: str | None = TOKENS["admin"], **kw):
        return self.call("DELETE", path, expect=expect, token=token, **kw)

    def webhook(self, body: bytes, *, path: str = "/webhook", expect: int = 200, content_type: str = JSON, **kw):
        return self.post(path, body, expect=expect, token=kw.pop("token", TOKENS["webhook"]),
                         content_type=content_type, **kw)


@dataclasses.dataclass
class Session:
    api: Api
    lad: Ladder


@pytest.fixture
def session(make_config, clock):
    config = make_config(
        auth={"tokens": [{"name": "alertmanager", "token": TOKENS["webhook"], "role": "webhook"},
                         {"name": "analysts", "token": TOKENS["read"], "role": "read"},
                         {"name": "oncall", "token": TOKENS["write"], "role": "write"},
                         {"name": "admin", "token": TOKENS["admin"], "role": "admin"}]},
        channels={"chat": {"type": "log"},
                  "pd": {"type": "pagerduty", "routing_key": "r" * 32, "webhook_secret": PD_SECRET},
                  "slack": {"type": "slack_app", "bot_token": "xoxb-openapi-0", "signing_secret": SLACK_SECRET,
                            "channel": "C0OPENAPI"},
                  "tg": {"type": "telegram", "bot_token": TG_TOKEN, "chat_id": TG_CHAT, "webhook_secret": TG_SECRET},
                  "sms": {"type": "twilio_sms", "account_sid": "AC" + "1" * 32, "auth_token": TWILIO_TOKEN,
                          "from": "+15550000000", "to": ["+15551111111"]}},
        routes=[{"levels": {"L1": ["chat", "pd"], "L2": ["chat"], "L3": ["chat"]}}],
        server={"public_url": "https://alerts.example.org/"},
        people={"alice": {"email": "alice@example.org"}, "bob": {}},
        schedules={"primary-db": {"timezone": "Europe/Berlin", "rotations": [
            {"participants": ["alice", "bob"], "length": "1w", "handoff": "mon 09:00", "start": "2026-01-05"}]},
                   "later": {"rotations": [{"participants": ["bob"], "length": "1d", "start": "2030-01-01"}]}})
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    lad = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
    yield Session(Api(app), lad)
    lad.close()
    app.extensions["alert_receiver"].db.dispose()


def basic(token: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"alertmanager:{token}".encode()).decode()}


def pd_event(event_type: str, key: str) -> bytes:
    return json.dumps({"event": {"id": "01ABC", "event_type": event_type, "resource_type": "incident",
                                 "agent": {"summary": "Alice Oncall", "type": "user_reference"},
                                 "data": {"id": "Q1", "type": "incident", "incident_key": key}}}).encode()


def pd_signed(body: bytes, secret: str = PD_SECRET) -> dict:
    return {"X-PagerDuty-Signature": "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def test_every_answer_of_a_realistic_session_matches_the_document(session, clock):
    api, lad = session.api, session.lad
    api.get("/api/v1/openapi.json", token=None)
    api.get("/-/healthy", token=None)
    api.get("/-/ready", token=None)

    # Alertmanager posts: a group of five, HA duplicates, other groups by basic auth, an empty and a truncated one.
    lad.channels["pd"].errors = [DeliveryError("HTTP 400: invalid routing key", retryable=False)]
    assert api.webhook(raw("b_group_5_firing")).get_json()["new"] == 5
    assert api.webhook(raw("b_group_5_firing")).get_json()["duplicate"] == 5
    for name in ("g_routing_critical", "g_routing_warning_not_inhibited", "g_routing_info", "d_mixed_firing_resolved",
                 "e_max_alerts_truncated"):
        api.webhook(raw(name), path="/webhook/am-2", token=None, headers=basic(TOKEN))
    api.webhook(json.dumps({"version": "4", "alerts": []}).encode())
    lad.deliver()
    clock.advance(20 * 60)
    lad.tick()
    lad.deliver()

    # What the webhook refuses, each kept as a dead letter.
    api.webhook(raw("a_single_firing"), token=None, valid=False, expect=401)
    api.webhook(raw("a_single_firing"), token=TOKENS["read"], expect=403)
    api.webhook(b'{"version": "4", "alerts": [}', valid=False, expect=400)
    api.webhook(b'\xff\xfe{"version": "4"}', valid=False, expect=400)
    api.webhook(json.dumps({"version": "3", "alerts": []}).encode(), valid=False, expect=422)
    bad = api.webhook(json.dumps({"version": "4", "alerts": [{"status": "firing", "labels": {"a": "b"}}]}).encode(),
                      valid=False, expect=422).get_json()
    assert bad["path"] == "alerts[0].startsAt" and bad["dead_letter_id"]
    api.webhook(raw("a_single_firing"), content_type="text/plain", valid=False, expect=415)
    api.webhook(b"x" * (1024 * 1024 + 10), content_type="text/plain", valid=False, expect=415)

    # History.
    page = api.get("/api/v1/alerts").get_json()
    alerts = {(a["alertname"], a["instance"] or a["service"]): a for a in page["alerts"] if a["status"] == "firing"}
    billing = [alerts[("InstanceDown", f"billing-{i}.internal:8080")] for i in range(1, 6)]
    first = api.get("/api/v1/alerts", query_string={"status": "firing", "level": "L1,L2", "limit": 2}).get_json()
    assert first["count"] == 2 and first["next_cursor"]
    api.get("/api/v1/alerts", query_string={"cursor": first["next_cursor"], "limit": 2})
    api.get("/api/v1/alerts", query_string=[("order", "asc"), ("acked", "false"), ("match", 'service="billing"'),
                                            ("severity", "critical"), ("service", "billing"), ("level", "L1"),
                                            ("alertname", "InstanceDown"), ("since", "2026-11-20T00:00:00Z"),
                                            ("until", "1800000000"), ("group_id", billing[0]["group_id"])])
    api.get("/api/v1/alerts", query_string={"fingerprint": billing[0]["fingerprint"]})
    assert api.get("/api/v1/alerts", query_string={"bogus": 1}, expect=400).get_json()["error"] == "unknown_parameter"
    api.get("/api/v1/alerts", query_string={"level": "L9"}, valid=False, expect=400)
    api.get("/api/v1/alerts", query_string={"limit": 5000}, valid=False, expect=400)
    api.get("/api/v1/alerts", query_string={"since": "2026-11-24T00:00:00Z", "until": "2026-11-23T00:00:00Z"},
            expect=400)
    api.get("/api/v1/alerts", query_string={"match": 'team=~"('}, expect=400)
    api.get("/api/v1/alerts", token=None, valid=False, expect=401)
    api.get(f"/api/v1/alerts/{billing[0]['id']}")
    api.get("/api/v1/alerts/999999", expect=404)
    api.get(f"/api/v1/alerts/{billing[0]['id']}", query_string={"x": 1}, expect=400)

    # Lifecycle.
    b1, b2, b3 = (a["id"] for a in billing[:3])
    checkout = alerts[("HighErrorRate", "checkout")]["id"]
    low = next(a["id"] for a in page["alerts"] if a["severity"] == "info")
    acked = api.post(f"/api/v1/alerts/{b1}/ack", {"actor": "erin", "comment": "looking", "ttl": "30m"}).get_json()
    assert acked["changed"] and acked["alert"]["acked_by"] == "erin"
    assert not api.post(f"/api/v1/alerts/{b1}/ack").get_json()["changed"]
    api.post(f"/api/v1/alerts/{b1}/unack", {"comment": "not mine"})
    api.post(f"/api/v1/alerts/{low}/escalate", {"level": "L1", "actor": "erin"})
    api.post(f"/api/v1/alerts/{b1}/escalate", expect=409)
    api.post(f"/api/v1/alerts/{low}/escalate", {"level": "L7"}, valid=False, expect=400)
    api.post(f"/api/v1/alerts/{b1}/ack", b"erin", content_type="text/plain", valid=False, expect=415)
    api.post(f"/api/v1/alerts/{b1}/ack", {"bogus": 1}, valid=False, expect=400)
    api.post(f"/api/v1/alerts/{b1}/ack", b"{", content_type=JSON, valid=False, expect=400)
    assert api.post(f"/api/v1/alerts/{b1}/ack", {"ttl": "soon"}, valid=False, expect=400).get_json()["fix"]
    api.post(f"/api/v1/alerts/{b2}/resolve", {"actor": "erin", "comment": "fixed"})
    api.post(f"/api/v1/alerts/{b2}/ack", expect=409)
    api.post("/api/v1/alerts/999999/unack", expect=404)
    api.post(f"/api/v1/alerts/{b3}/ack", token=TOKENS["read"], expect=403)
    group = api.post("/api/v1/groups/ack", {"group_key": billing[0]["group_key"], "comment": "on it"}).get_json()
    assert set(group["acked"]) >= {b1, b3}
    assert api.post("/api/v1/groups/ack", {"group_id": group["group_id"]}).get_json()["already_acked"]
    api.post("/api/v1/groups/ack", {}, valid=False, expect=400)
    api.post("/api/v1/groups/ack", {"group_key": "a", "group_id": "b"}, valid=False, expect=400)

    # One-click links from the messages, and PagerDuty's webhook.
    links = {a.id: a.ack_url.removeprefix("https://alerts.example.org") for m in lad.channels["chat"].sent
             for a in m.alerts if a.ack_url}
    api.get(links[checkout], token=None)
    api.post(links[checkout], data={"actor": "erin"}, token=None)
    api.post(links[b2], data={"actor": "erin"}, token=None, expect=409)
    api.get("/a/not-a-token", token=None, expect=404)
    api.post("/a/not-a-token", token=None, expect=404)
    body = pd_event("incident.resolved", dedup_key(checkout))
    assert api.post("/webhooks/pagerduty", body, token=None, headers=pd_signed(body),
                    content_type=JSON).get_json()["status"] == "applied"
    api.post("/webhooks/pagerduty", body, token=None, headers=pd_signed(body), content_type=JSON)  # ignored: resolved
    api.post("/webhooks/pagerduty", pd_event("incident.priority_updated", "x"), token=None,
             headers=pd_signed(pd_event("incident.priority_updated", "x")), content_type=JSON)
    api.post("/webhooks/pagerduty", body, token=None, content_type=JSON, valid=False, expect=401)
    api.post("/webhooks/pagerduty", body, token=None, headers=pd_signed(body, "wrong"), content_type=JSON,
             expect=401)
    api.post("/webhooks/pagerduty", b'{"nope": 1}', token=None, headers=pd_signed(b'{"nope": 1}'), content_type=JSON,
             valid=False, expect=400)
    # The chat integrations, each signed as its platform signs (tests/web/test_*_webhook.py and
    # test_slack_interactions.py test them in full).
    click = slack_form(slack_payload("ack", f"alert:{checkout}"))
    api.post("/integrations/slack/interactions", click, token=None,
             headers=slack_sign(click, int(clock.now().timestamp())))
    api.post("/integrations/slack/interactions", click, token=None, headers=slack_sign(click, 1), expect=401)
    api.post("/integrations/telegram", tg_update(f"ack:alert:{checkout}"), token=None, headers=tg_headers())
    api.post("/integrations/telegram", tg_update("ack:alert:1"), token=None, headers=tg_headers("wrong"), expect=401)
    sms = sms_reply("what is this?")
    assert "ACK" in api.post("/integrations/twilio/sms", None, token=None, data=sms,
                             headers={"X-Twilio-Signature": sms_sign(sms)}).get_data(as_text=True)
    api.post("/integrations/twilio/sms", None, token=None, data=sms, headers={"X-Twilio-Signature": "bad"},
             expect=401)

    # Deliveries.
    lad.deliver()
    notes = api.get("/api/v1/notifications").get_json()["notifications"]
    assert {n["status"] for n in notes} >= {"sent", "dead"}
    dead = api.get("/api/v1/notifications", query_string={"status": "dead"}).get_json()["notifications"][0]
    sent = api.get("/api/v1/notifications", query_string={"kind": "firing", "channel": "chat", "alert_id": b1,
                                                          "since": "2026-11-23T00:00:00Z", "until": "1800000000",
                                                          "limit": 1}).get_json()
    api.get("/api/v1/notifications", query_string={"cursor": notes[0]["id"], "limit": 2})
    api.get(f"/api/v1/notifications/{sent['notifications'][0]['id']}")
    api.get("/api/v1/notifications/999999", expect=404)
    api.get(f"/api/v1/notifications/{dead['id']}/attempts")
    tries = api.get(f"/api/v1/notifications/{sent['notifications'][0]['id']}/attempts").get_json()["attempts"]
    assert [t["outcome"] for t in tries] == ["sent"]
    api.get("/api/v1/notifications/999999/attempts", expect=404)
    api.get("/api/v1/notifications", query_string={"status": "lost"}, valid=False, expect=400)
    assert api.post(f"/api/v1/notifications/{dead['id']}/retry").get_json()["status"] == "pending"
    api.post(f"/api/v1/notifications/{sent['notifications'][0]['id']}/retry", expect=409)
    api.post("/api/v1/notifications/999999/retry", expect=404)

    # Dead letters: list, look, replay.
    rejected = api.get("/api/v1/webhooks/rejected").get_json()["rejected"]
    by_reason = {}
    for r in rejected:
        by_reason.setdefault((r["reason"], r["body_truncated"]), r["id"])
    page = api.get("/api/v1/webhooks/rejected", query_string={"limit": 2}).get_json()
    api.get("/api/v1/webhooks/rejected", query_string={"cursor": page["next_cursor"]})
    shown = [api.get(f"/api/v1/webhooks/rejected/{r['id']}").get_json() for r in rejected]
    assert any("body_base64" in s for s in shown) and any("body" in s for s in shown)
    api.get("/api/v1/webhooks/rejected/999999", expect=404)
    admin = TOKENS["admin"]
    assert api.post(f"/api/v1/webhooks/rejected/{by_reason[('unsupported_media_type', False)]}/replay",
                    token=admin).get_json()["status"] == "ok"
    api.post(f"/api/v1/webhooks/rejected/{by_reason[('unsupported_media_type', True)]}/replay", token=admin,
             expect=409)
    api.post(f"/api/v1/webhooks/rejected/{by_reason[('malformed_json', False)]}/replay", token=admin, expect=400)
    api.post(f"/api/v1/webhooks/rejected/{by_reason[('unsupported_version', False)]}/replay", token=admin,
             expect=422)
    api.post("/api/v1/webhooks/rejected/999999/replay", token=admin, expect=404)
    api.post(f"/api/v1/webhooks/rejected/{rejected[0]['id']}/replay", expect=403)

    # Alertmanager resolves the group; then the analysts' numbers.
    api.webhook(raw("c_group_resolved"))
    clock.advance(3600)
    api.get("/api/v1/stats/summary")
    api.get("/api/v1/stats/summary", query_string=[
        ("service", "billing"), ("severity", "critical"), ("level", "L1"), ("status", "resolved"), ("acked", "true"),
        ("since", "2026-11-20T00:00:00Z"), ("until", "2026-11-24T00:00:00Z")])
    for by in ("count", "duration", "escalations", "noise"):
        assert api.get("/api/v1/stats/top", query_string={"by": by, "limit": 5, "flap_window": "2h",
                                                          "flap_min": 2}).get_json()["top"], by
    api.get("/api/v1/stats/top", query_string={"by": "loudness"}, valid=False, expect=400)
    api.get("/api/v1/stats/top", query_string={"flap_window": "soon"}, valid=False, expect=400)
    api.get("/api/v1/stats/trends")
    api.get("/api/v1/stats/trends", query_string={"interval": "day", "group_by": "service", "tz": "Europe/Paris"})
    api.get("/api/v1/stats/trends", query_string={"group_by": "none", "since": "2026-11-23T00:00:00Z"})
    api.get("/api/v1/stats/trends", query_string={"tz": "Mars/Olympus"}, expect=400)
    api.get("/api/v1/stats/trends", query_string={"since": "2000-01-01T00:00:00Z"}, expect=400)
    assert api.get("/api/v1/stats/services/billing/health").get_json()["inputs"]["alerts"] == 5
    api.get("/api/v1/stats/services/nothing-here/health", query_string={"since": "2026-11-01T00:00:00Z"})
    assert api.get("/api/v1/reports/daily", query_string={"date": "2026-11-23", "limit": 3}).get_json()["services"]
    api.get("/api/v1/reports/daily", query_string={"tz": "Europe/Paris"})
    api.get("/api/v1/reports/daily", query_string={"date": "yesterday"}, valid=False, expect=400)

    # Who is on call: every schedule (someone, and nobody yet), one, at a moment; what is refused.
    everywhere = api.get("/api/v1/oncall").get_json()["oncall"]
    assert [(o["schedule"], o["source"]) for o in everywhere] == [("later", None), ("primary-db", "rotation")]
    assert api.get("/api/v1/oncall", query_string={"schedule": "primary-db", "at": "2026-01-12T08:30:00Z"}
                   ).get_json()["person"] == "bob"
    api.get("/api/v1/oncall", query_string={"schedule": "secondary-db"}, expect=404)
    api.get("/api/v1/oncall", query_string={"at": "soon"}, expect=400)
    api.get("/api/v1/oncall", query_string={"who": "me"}, expect=400)
    api.get("/api/v1/oncall", token=None, valid=False, expect=401)
    api.get("/api/v1/oncall", token=TOKENS["webhook"], expect=403)
    assert "BEGIN:VEVENT" in api.get("/api/v1/schedules/primary-db.ics", query_string={"days": 14}).get_data(as_text=True)
    api.get("/api/v1/schedules/secondary-db.ics", expect=404)
    api.get("/api/v1/schedules/primary-db.ics", query_string={"days": 0}, valid=False, expect=400)
    # Overrides: made (a start in the past holds from now), seen by who is on call, listed, deleted; what is refused.
    overrides = "/api/v1/schedules/primary-db/overrides"
    cover = {"person": "bob", "start": "2026-11-20T00:00:00Z", "end": "2026-11-30T00:00:00Z"}
    made = api.post(overrides, {**cover, "actor": "erin"}, expect=201).get_json()
    assert api.get("/api/v1/oncall", query_string={"schedule": "primary-db"}).get_json()["source"] == "override"
    assert [o["id"] for o in api.get(overrides).get_json()["overrides"]] == [made["id"]]
    api.post(overrides, {**cover, "person": "mallory"}, expect=400)
    api.post(overrides, {"person": "bob"}, valid=False, expect=400)
    api.post(overrides, {**cover, "why": "swap"}, valid=False, expect=400)
    api.post(overrides, b"bob", content_type="text/plain", valid=False, expect=415)
    api.post("/api/v1/schedules/secondary-db/overrides", cover, expect=404)
    api.post(overrides, cover, token=TOKENS["read"], expect=403)
    api.get("/api/v1/schedules/secondary-db/overrides", expect=404)
    api.delete(f"{overrides}/{made['id']}", token=TOKENS["read"], expect=403)
    api.delete(f"{overrides}/{made['id']}", token=TOKENS["write"], expect=204)
    api.delete(f"{overrides}/{made['id']}", token=TOKENS["write"], expect=404)
    # Maintenance windows: made, listed, ended early (twice: 409); what is refused.
    window = api.post("/api/v1/maintenance", {"matchers": ['service="db"'], "end": "2026-11-23T12:00:00Z",
                                              "comment": "failover"}, expect=201).get_json()
    api.post("/api/v1/maintenance", {"matchers": ['service="db"'], "start": "2026-11-24T08:00:00Z",
                                     "end": "2026-11-24T09:00:00Z"}, expect=201)
    assert [w["state"] for w in api.get("/api/v1/maintenance").get_json()["windows"]] == ["active", "upcoming"]
    api.post("/api/v1/maintenance", {"matchers": ['service~"db"'], "end": "2026-11-23T12:00:00Z"}, expect=400)
    api.post("/api/v1/maintenance", {"matchers": [], "end": "2026-11-23T12:00:00Z"}, valid=False, expect=400)
    api.post("/api/v1/maintenance", {"matchers": ['a="b"'], "end": "2026-11-23T12:00:00Z", "why": 1}, valid=False,
             expect=400)
    api.post("/api/v1/maintenance", {"matchers": ['a="b"'], "end": "2026-11-23T12:00:00Z"}, token=TOKENS["read"],
             expect=403)
    api.post(f"/api/v1/maintenance/{window['id']}/end", {"actor": "erin"})
    api.post(f"/api/v1/maintenance/{window['id']}/end", expect=409)
    api.post("/api/v1/maintenance/999999/end", expect=404)
    api.get("/api/v1/maintenance", query_string={"all": "true"})
    api.get("/api/v1/maintenance", query_string={"all": "maybe"}, valid=False, expect=400)

    # Correlations, exports, retention.
    assert api.get(f"/api/v1/alerts/{b1}/related", query_string={"window": "1h", "limit": 10}).get_json()["related"]
    link = {"alert_id": b1, "related_alert_id": checkout, "type": "cause", "score": 0.8, "comment": "one deploy"}
    api.post("/api/v1/correlations", link, expect=201)
    api.post("/api/v1/correlations", {"alert_id": checkout, "related_alert_id": b1, "type": "cause"}, expect=409)
    api.post("/api/v1/correlations", {"alert_id": b1, "related_alert_id": 999999}, expect=404)
    api.post("/api/v1/correlations", {"alert_id": b1}, valid=False, expect=400)
    api.post("/api/v1/correlations", {**link, "score": 2}, valid=False, expect=400)
    api.post("/api/v1/correlations", link, token=TOKENS["read"], expect=403)
    manual = api.get(f"/api/v1/alerts/{checkout}/related").get_json()["related"]
    assert any(r["reasons"][0].get("direction") == "incoming" for r in manual)
    api.get("/api/v1/alerts/999999/related", expect=404)
    api.get(f"/api/v1/alerts/{b1}/related", query_string={"window": "2d"}, expect=400)
    export_row = OAS31Validator(served(api.app)["components"]["schemas"]["ExportRow"])
    table = api.get("/api/v1/alerts/export.csv", query_string={"service": "billing"})
    header, *lines = table.get_data(as_text=True).splitlines()
    assert header.split(",") == list(export_row.schema["properties"]) and len(lines) >= 5
    for row in api.get("/api/v1/alerts/export", query_string={"format": "json", "status": "resolved"}).get_json():
        export_row.validate(row)
    ndjson = api.get("/api/v1/alerts/export.csv", query_string={"format": "ndjson"}).get_data(as_text=True)
    for line in ndjson.splitlines():
        export_row.validate(json.loads(line))
    api.get("/api/v1/alerts/export", query_string={"format": "xlsx"}, valid=False, expect=400)
    api.delete("/api/v1/history", query_string={"older_than": "1d", "dry_run": "true"}, token=admin)
    assert api.delete("/api/v1/history", query_string={"older_than": "1d"}, token=admin).get_json()["complete"]
    api.delete("/api/v1/history", token=admin, valid=False, expect=400)
    api.delete("/api/v1/history", query_string={"older_than": "1h"}, token=admin, expect=400)
    api.delete("/api/v1/history", query_string={"older_than": "90d"}, token=TOKENS["write"], expect=403)

    # Operators.
    api.get("/metrics", token=None)
    api.post("/-/reload", token=admin)
    api.post("/-/reload", expect=403)
    source = pathlib.Path(api.app.extensions["alert_receiver"].config.source)
    good = source.read_text()
    source.write_text(good + "\nnot_a_section: 1\n")
    try:
        assert api.post("/-/reload", token=admin, expect=400).get_json()["error"] == "invalid_config"
    finally:
        source.write_text(good)

    # Every operation of the document answered here at least once with a 2xx.
    ok = {op for op, codes in api.seen.items() if any(200 <= c < 300 for c in codes)}
    assert operations(served(api.app)) - ok == set()
