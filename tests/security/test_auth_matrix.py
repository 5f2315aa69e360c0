"""Every route of the app × every kind of caller, with the status each must get.

POLICY is the decision for every (route, method): a Role (the view is guarded by `auth.require`), a dashboard
Session(role) (a browser session cookie, `dashboard_session.guard`: a bearer token never opens it), or why it takes
no bearer token (`auth.open_access`). Routes are enumerated from `app.url_map`: a route nobody decided on fails
`test_every_route_has_a_decision` by name, before any request is made.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.domain import Role
from receiver.web import auth, pagerduty_webhook
from receiver.web.throttle import FailureThrottle

from ..support.fixtures import raw
from .conftest import PD_SECRET, TOKENS, bearer, token_settings

# --- the decisions ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Session:
    """A dashboard page: a signed-in browser session whose token has `role` (tests/dashboard checks sessions);
    without one a GET is sent to the sign-in page (303, or 401 for a fragment) and a POST fails its CSRF check
    (403) — whatever bearer token comes with it."""

    role: Role


POLICY: dict[tuple[str, str], Role | Session | str] = {
    ("/webhook", "POST"): Role.WEBHOOK,
    ("/webhook/<name>", "POST"): Role.WEBHOOK,
    ("/api/v1/alerts", "GET"): Role.READ,
    ("/api/v1/alerts/<int:alert_id>", "GET"): Role.READ,
    ("/api/v1/alerts/<int:alert_id>/ack", "POST"): Role.WRITE,
    ("/api/v1/alerts/<int:alert_id>/unack", "POST"): Role.WRITE,
    ("/api/v1/alerts/<int:alert_id>/resolve", "POST"): Role.WRITE,
    ("/api/v1/alerts/<int:alert_id>/escalate", "POST"): Role.WRITE,
    ("/api/v1/alerts/<int:alert_id>/related", "GET"): Role.READ,
    ("/api/v1/groups/ack", "POST"): Role.WRITE,
    ("/api/v1/correlations", "POST"): Role.WRITE,
    ("/api/v1/alerts/export.csv", "GET"): Role.READ,
    ("/api/v1/alerts/export", "GET"): Role.READ,
    ("/api/v1/notifications", "GET"): Role.READ,
    ("/api/v1/notifications/<int:notification_id>", "GET"): Role.READ,
    ("/api/v1/notifications/<int:notification_id>/retry", "POST"): Role.WRITE,
    ("/api/v1/notifications/<int:notification_id>/attempts", "GET"): Role.READ,
    ("/api/v1/webhooks/rejected", "GET"): Role.READ,
    ("/api/v1/webhooks/rejected/<int:rejected_id>", "GET"): Role.READ,
    # A replay stores alerts under whatever source the dead letter had: only an admin may.
    ("/api/v1/webhooks/rejected/<int:rejected_id>/replay", "POST"): Role.ADMIN,
    ("/api/v1/stats/summary", "GET"): Role.READ,
    ("/api/v1/stats/top", "GET"): Role.READ,
    ("/api/v1/stats/trends", "GET"): Role.READ,
    ("/api/v1/stats/services/<path:service>/health", "GET"): Role.READ,
    ("/api/v1/reports/daily", "GET"): Role.READ,
    ("/api/v1/oncall", "GET"): Role.READ,
    ("/api/v1/schedules/<name>.ics", "GET"): Role.READ,
    ("/api/v1/maintenance", "GET"): Role.READ,
    ("/api/v1/maintenance", "POST"): Role.WRITE,
    ("/api/v1/maintenance/<int:window_id>/end", "POST"): Role.WRITE,
    ("/api/v1/schedules/<name>/overrides", "GET"): Role.READ,
    ("/api/v1/schedules/<name>/overrides", "POST"): Role.WRITE,
    ("/api/v1/schedules/<name>/overrides/<int:override_id>", "DELETE"): Role.WRITE,
    ("/api/v1/history", "DELETE"): Role.ADMIN,
    ("/-/reload", "POST"): Role.ADMIN,
    # Orchestrators probe these without credentials; they say nothing stored.
    ("/-/healthy", "GET"): auth.PUBLIC,
    ("/-/ready", "GET"): auth.PUBLIC,
    # The document says what exists, never anything stored (docs/design.md: "everyone").
    ("/api/v1/openapi.json", "GET"): auth.PUBLIC,
    # Open by default, as a Prometheus scrape config has no credentials unless told; auth.metrics_role closes it.
    ("/metrics", "GET"): auth.CONFIGURED,
    # One-click ack links from messages: the path carries a signed, expiring token; a bearer token changes nothing.
    ("/a/<token>", "GET"): auth.SIGNED_LINK,
    ("/a/<token>", "POST"): auth.SIGNED_LINK,
    # PagerDuty signs its webhooks (HMAC of the body under the channel's webhook_secret); it has no bearer token.
    ("/webhooks/pagerduty", "POST"): auth.SIGNATURE,
    # Twilio signs its incoming-SMS webhooks (HMAC-SHA1 of public_url + path + the form under the auth_token).
    ("/integrations/twilio/sms", "POST"): auth.SIGNATURE,
    # Slack signs its interactions (v0 HMAC of timestamp and body under a slack_app channel's signing_secret).
    ("/integrations/slack/interactions", "POST"): auth.SIGNATURE,
    # Telegram sends the setWebhook secret_token of a telegram channel in X-Telegram-Bot-Api-Secret-Token.
    ("/integrations/telegram", "POST"): auth.SIGNATURE,
    # The dashboard (web/dashboard*.py): HTML for people, signed in with a session cookie, never a bearer token.
    ("/", "GET"): Session(Role.READ),
    ("/now/alerts", "GET"): Session(Role.READ),
    ("/alerts/<int:alert_id>", "GET"): Session(Role.READ),
    ("/history", "GET"): Session(Role.READ),
    ("/history/export.csv", "GET"): Session(Role.READ),
    ("/stats", "GET"): Session(Role.READ),
    ("/delivery", "GET"): Session(Role.READ),
    ("/alerts/<int:alert_id>/ack", "POST"): Session(Role.WRITE),
    ("/alerts/<int:alert_id>/resolve", "POST"): Session(Role.WRITE),
    ("/delivery/<int:notification_id>/retry", "POST"): Session(Role.WRITE),
    ("/login", "GET"): auth.PUBLIC,
    ("/login", "POST"): auth.PUBLIC,  # checks the token typed into the form, behind a CSRF token
    ("/logout", "POST"): auth.PUBLIC,
    ("/assets/<path:filename>", "GET"): auth.PUBLIC,  # the dashboard's CSS and script
}

# Callers: no header, a token of each role, a token nobody configured, and headers that are not credentials.
CALLERS: dict[str, dict[str, str]] = {
    "none": {},
    "webhook": bearer(TOKENS["webhook"]),
    "read": bearer(TOKENS["read"]),
    "write": bearer(TOKENS["write"]),
    "admin": bearer(TOKENS["admin"]),
    "basic-webhook": {"Authorization": "Basic " + base64.b64encode(f"am:{TOKENS['webhook']}".encode()).decode()},
    "wrong": bearer("not-a-configured-token"),
    "wrong-prefix": bearer(TOKENS["admin"][:-1]),
    "wrong-longer": bearer(TOKENS["admin"] + "0"),
    "malformed-empty-bearer": {"Authorization": "Bearer "},
    "malformed-no-scheme": {"Authorization": TOKENS["admin"]},
    "malformed-other-scheme": {"Authorization": f"Token {TOKENS['admin']}"},
    "malformed-basic-not-base64": {"Authorization": "Basic !!!not-base64!!!"},
    "malformed-basic-no-colon": {"Authorization": "Basic " + base64.b64encode(TOKENS["admin"].encode()).decode()},
    "malformed-basic-not-utf8": {"Authorization": "Basic " + base64.b64encode(b"am:\xff\xfe").decode()},
}
ROLE_OF = {"webhook": Role.WEBHOOK, "basic-webhook": Role.WEBHOOK, "read": Role.READ, "write": Role.WRITE,
           "admin": Role.ADMIN}
GRANTS = {Role.ADMIN: set(Role), Role.WRITE: {Role.WRITE, Role.READ}, Role.READ: {Role.READ},
          Role.WEBHOOK: {Role.WEBHOOK}}
PATH_VALUES = {"int": "1", "path": "web/frontend", "": "x"}
_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def routes(app) -> dict[tuple[str, str], object]:
    """(rule, method) → view, for every route the app serves."""
    found = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":  # Flask's own, absent here (static_folder=None)
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found[(rule.rule, method)] = app.view_functions[rule.endpoint]
    return found


def concrete(rule: str) -> str:
    return _CONVERTER.sub(lambda m: PATH_VALUES.get(m.group(1) or "", "x"), rule)


def expected(policy: Role | Session | str, caller: str, method: str) -> set[int] | str:
    """The status set a caller must get; "passes": past the guard (neither 401 nor 403, nor any 5xx); "as-none":
    whatever a request without any Authorization header gets (the header changes nothing), below 500."""
    if isinstance(policy, Role):
        role = ROLE_OF.get(caller)
        if role is None:
            return {401}
        return "passes" if policy in GRANTS[role] else {403}
    if isinstance(policy, Session):
        return {303, 401} if method == "GET" else {403}
    return {auth.PUBLIC: "as-none", auth.CONFIGURED: {200}, auth.SIGNATURE: {401}, auth.SIGNED_LINK: {404}}[policy]


def call(client, rule: str, method: str, headers: dict[str, str]):
    """One request, its body read and the response closed (a streamed export holds a transaction until then)."""
    if rule.startswith("/webhook"):
        kw = dict(data=raw("a_single_firing"), content_type="application/json")
    elif method in ("POST", "DELETE"):
        kw = dict(json={})
    else:
        kw = {}
    resp = client.open(concrete(rule), method=method, headers=headers, **kw)
    resp.get_data()
    resp.close()
    return resp


# --- the tests --------------------------------------------------------------------------------------------


def test_every_route_has_a_decision(secured_app):
    served = routes(secured_app)
    undecided = sorted(set(served) - set(POLICY))
    assert not undecided, (
        "routes with no access decision in tests/security/test_auth_matrix.py POLICY: "
        + ", ".join(f"{m} {r}" for r, m in undecided)
        + ". Add each with its Role (view guarded by receiver.web.auth.require(role)) or the reason it takes no "
          "token (receiver.web.auth.open_access(PUBLIC | SIGNATURE | SIGNED_LINK | CONFIGURED)).")
    assert sorted(set(POLICY) - set(served)) == [], "POLICY names routes the app no longer serves"


def test_every_view_states_its_policy_and_it_is_the_tables(secured_app):
    for (rule, method), view in routes(secured_app).items():
        assert hasattr(view, "required_role"), f"{method} {rule}: its view is neither auth.require(...) nor auth.open_access(...)"
        policy = POLICY[(rule, method)]
        if isinstance(policy, Role):
            assert view.required_role is policy, f"{method} {rule}: view requires {view.required_role}, table says {policy}"
        elif isinstance(policy, Session):
            assert view.required_role is policy.role, (method, rule, view.required_role)
        else:
            assert view.required_role is None and view.access == policy, (method, rule, view.access)


def test_matrix(secured_app):
    """Every route × every caller (one app: the routes' answers past the guard do not matter, only who gets past)."""
    # Hundreds of wrong tokens from one address: throttling would answer 429 (test_auth_failures.py tests it).
    secured_app.extensions["alert_receiver"].auth_throttle = FailureThrottle(limit=10**9)
    client = secured_app.test_client()
    failures = []
    for caller, headers in CALLERS.items():
        for (rule, method) in routes(secured_app):
            policy = POLICY[(rule, method)]
            resp = call(client, rule, method, headers)
            want = expected(policy, caller, method)
            if want == "passes":
                ok = resp.status_code not in (401, 403) and resp.status_code < 500
            elif want == "as-none":
                want = {call(client, rule, method, {}).status_code}
                ok = resp.status_code in want and resp.status_code < 500
            else:
                ok = resp.status_code in want
            if not ok:
                failures.append(f"{caller:28} {method} {rule}: {resp.status_code} (want {want}) "
                                f"{resp.get_data(as_text=True)[:160]}")
            elif isinstance(policy, Role) and resp.status_code == 401:
                assert resp.get_json()["error"] == "unauthorized"
                assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            elif isinstance(policy, Role) and resp.status_code == 403:
                assert resp.get_json()["error"] == "forbidden"
    assert not failures, "\n".join(failures)


def test_metrics_role_closes_metrics(make_config, clock):
    config = make_config(auth={"tokens": token_settings(), "metrics_role": "read"})
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    try:
        client = app.test_client()
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=bearer(TOKENS["webhook"])).status_code == 403
        assert client.get("/metrics", headers=bearer("nope")).status_code == 401
        for role in ("read", "write", "admin"):
            resp = client.get("/metrics", headers=bearer(TOKENS[role]))
            assert resp.status_code == 200 and b"alert_receiver_" in resp.data
        # The document says so too.
        operation = client.get("/api/v1/openapi.json").get_json()["paths"]["/metrics"]["get"]
        assert operation["x-required-role"] == "read" and {"401", "403"} <= set(operation["responses"])
    finally:
        app.extensions["alert_receiver"].db.dispose()


def test_without_tokens_every_route_is_open(client):
    # No tokens = open (serve refuses a non-loopback bind in that case): nobody gets 401 or 403.
    app = client.application
    for (rule, method), view in routes(app).items():
        status = call(client, rule, method, {}).status_code
        if view.__module__.startswith("receiver.web.dashboard") and method == "POST":
            # Open, but a browser POST still needs its CSRF token (403); /login has nothing to sign in to (303).
            assert status in (303, 403), (method, rule, status)
            continue
        assert status not in (401, 403) and status < 500, (method, rule, status)


def test_without_tokens_a_page_on_another_site_cannot_act_through_the_browser(client):
    """Open mode identifies nobody, so a cross-site form POST (no preflight) must not ack, resolve or retry:
    browsers say where such a request comes from. API clients and Alertmanager send neither header."""
    app = client.application
    unsafe = [(rule, method) for (rule, method), view in routes(app).items()
              if method not in ("GET", "HEAD", "OPTIONS") and getattr(view, "required_role", None) is not None
              and not view.__module__.startswith("receiver.web.dashboard")]  # those have their own CSRF tokens
    assert unsafe, "no token-guarded unsafe routes found"
    for rule, method in unsafe:
        for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            resp = call(client, rule, method, headers)
            assert resp.status_code == 403 and b"cross_site_request" in resp.get_data(), (method, rule, headers, resp.get_data())
    # The same origin, or no browser headers at all, is an ordinary request (here: no such alert).
    same = client.post("/api/v1/alerts/987654/ack", json={"actor": "me"}, headers={"Origin": "http://localhost"})
    plain = client.post("/api/v1/alerts/987654/ack", json={"actor": "me"})
    assert same.status_code == plain.status_code == 404


# --- constant-time comparison -----------------------------------------------------------------------------


@pytest.fixture
def compare_calls(monkeypatch):
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    monkeypatch.setattr(pagerduty_webhook.hmac, "compare_digest", spy)
    return calls


@pytest.mark.parametrize("presented", [TOKENS["webhook"], TOKENS["admin"], "nope", "x" * 500],
                         ids=["first-token", "last-token", "unknown", "long"])
def test_tokens_are_compared_with_compare_digest_against_every_token_without_early_exit(compare_calls, presented):
    configured = [(t["name"], t["token"], Role(t["role"])) for t in token_settings()]
    authenticator = auth.Authenticator(configured)
    principal = authenticator.identify(f"Bearer {presented}")
    assert (principal.name if principal else None) == {t: n for n, t, _ in configured}.get(presented)
    # One comparison per configured token, whichever matched, all of equal length (digests): neither which
    # token matched nor the length of any shows in the timing.
    assert len(compare_calls) == len(configured)
    assert {(len(a), len(b)) for a, b in compare_calls} == {(32, 32)}
    assert {a for a, _ in compare_calls} == {hashlib.sha256(presented.encode()).digest()}


def test_no_token_secret_is_kept_in_the_clear():
    authenticator = auth.Authenticator([("am", TOKENS["webhook"], Role.WEBHOOK)])
    assert TOKENS["webhook"] not in repr(vars(authenticator)) and TOKENS["webhook"] not in repr(authenticator._tokens)


def test_pagerduty_signatures_are_compared_with_compare_digest_without_early_exit(compare_calls):
    body = b'{"event": {}}'
    good = hmac.new(PD_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert pagerduty_webhook.signature_valid(body, f"v1={good},v1=00,v1=11", [PD_SECRET.encode(), b"other"])
    assert len(compare_calls) == 6  # every secret × every presented signature, though the first matched
