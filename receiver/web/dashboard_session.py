"""How a browser signs in to the dashboard, what it may do, and why its actions cannot be forged.

Design (docs/dashboard.md, "Signing in", says the same):

- **Sign-in.** With tokens configured, the dashboard's pages need a token of role `read` (or any role that implies
  it); acting (ack, resolve, retry) needs `write`. A person types a token once into the sign-in form. The browser
  then holds a session cookie: HttpOnly (no script, hence no injected script, can read it), SameSite=Strict (never
  sent on a request another site starts), Secure when served over HTTPS, no Max-Age (it ends with the browser
  session), and signed under a key derived from the one the ack links use (kept in the database, so every worker
  and replica agrees, and nobody configures one); a signature older than LIFETIME is refused.
- **Signing out ends the session on the server.** A signed-in cookie carries a random session id; signing out
  revokes it in the database (store/replay_guards.py), and every request of a signed-in session checks it, so a
  copy of the cookie is worthless afterwards, on every worker and replica. Retention deletes a revocation once
  the cookie is past LIFETIME anyway.
- **The cookie never holds the token**, nor its plain hash: it holds HMAC(key, token), which names the token
  without revealing it. Every request looks the binding up among the tokens configured *now*, so removing or
  rotating a token in receiver.yml ends its sessions.
- **CSRF.** Every POST (sign-in, sign-out and every action) must carry the session's random CSRF token, as the form
  field `csrf` or the header X-CSRF-Token, compared in constant time; a POST whose Origin (or Sec-Fetch-Site) says
  another site started it is refused whatever it carries. SameSite=Strict is a second wall, not the only one.
- The JSON API keeps taking bearer tokens only: a cookie never authorises /api/v1, so the API has no CSRF surface.

With no tokens configured everything is open (the receiver then listens on loopback only), as for the API; the
CSRF check still applies.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import hmac
import json
import re
import secrets
from typing import Callable
from urllib.parse import unquote, urlsplit

from flask import current_app, g, jsonify, redirect, render_template, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..domain import Role
from ..engine import links
from ..store import replay_guards
from ..store.db import read_transaction
from .auth import Authenticator, Principal, check_host
from .context import services

COOKIE = "alert_receiver_dashboard"
LIFETIME = dt.timedelta(hours=12)
SID_MAX = 64  # the column's width (store/models.py SessionRevocation)
_EXTENSION = "alert_receiver_dashboard"
_ANONYMOUS = Principal("dashboard", Role.ADMIN)  # no tokens configured: everything is open, as for the API


@dataclasses.dataclass
class Session:
    principal: Principal | None  # None: not signed in
    csrf: str
    binding: str = ""
    sid: str = ""  # a signed-in session's id, revoked in the database on sign-out
    dirty: bool = False  # the cookie must be (re)written


class CsrfError(Exception):
    pass


def _state() -> dict:
    return current_app.extensions.setdefault(_EXTENSION, {})


def _key() -> bytes:
    """The session key: derived from the ack-link key in the database, computed once per process."""
    state = _state()
    if "key" not in state:
        svc = services()
        base = links.link_key(svc.writes, now=svc.clock.now())
        state["key"] = hmac.new(base, b"alert-receiver dashboard session v1", hashlib.sha256).digest()
    return state["key"]


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_key(), salt="dashboard-session", serializer=json)


def binding_of(secret: str) -> str:
    return hmac.new(_key(), b"token:" + secret.encode("utf-8"), hashlib.sha256).hexdigest()


def _bindings() -> list[tuple[str, Principal]]:
    state = _state()
    if "bindings" not in state:
        state["bindings"] = [(binding_of(t.token.reveal()), Principal(t.name, t.role))
                             for t in services().config.auth.tokens]
    return state["bindings"]


def _principal_of(binding: str) -> Principal | None:
    """The configured token a binding names; every one is compared (no early exit), as in auth.identify."""
    found = None
    for candidate, principal in _bindings():
        if hmac.compare_digest(candidate.encode(), binding.encode()) and found is None:
            found = principal
    return found


def auth_enabled() -> bool:
    return services().auth.enabled


def load() -> Session:
    """The request's session (cached on `g`): read from the cookie, or a new, signed-out one."""
    if "dashboard_session" in g:
        return g.dashboard_session
    raw = request.cookies.get(COOKIE)
    session = _from_cookie(raw) if raw else None
    if session is None:
        session = Session(None, secrets.token_urlsafe(32), dirty=True)
    if not auth_enabled():
        session.principal = _ANONYMOUS
    g.dashboard_session = session
    return session


def _from_cookie(raw: str) -> Session | None:
    """The session a cookie holds; None when it is forged, too old, or signed out on the server."""
    try:
        data = _serializer().loads(raw, max_age=int(LIFETIME.total_seconds()))
        csrf, binding, sid = str(data["c"]), str(data.get("b") or ""), str(data.get("s") or "")
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    if binding and not _live(sid):  # no id: a cookie from before sign-out revoked sessions, refused too
        return None
    return Session(_principal_of(binding) if binding else None, csrf, binding, sid)


def _live(sid: str) -> bool:
    if not sid or len(sid) > SID_MAX:
        return False
    with read_transaction(services().db) as conn:
        return not replay_guards.session_revoked(conn, sid)


def sign_in(secret: str) -> Principal | None:
    """Start a session for the token `secret` if it is configured and may read; a fresh CSRF token too."""
    principal = services().auth.identify(f"Bearer {secret}")
    if principal is None or not Authenticator.allows(principal, Role.READ):
        return None
    g.dashboard_session = Session(principal, secrets.token_urlsafe(32), binding_of(secret), secrets.token_urlsafe(24),
                                  dirty=True)
    return principal


def sign_out() -> None:
    """End the session everywhere: its id is revoked until its cookie would have expired anyway."""
    sid = load().sid
    if sid:
        svc = services()
        now = svc.clock.now()
        with svc.writes.transaction() as conn:
            replay_guards.revoke_session(conn, sid, now=now, expires_at=now + LIFETIME)
    g.dashboard_session = Session(None if auth_enabled() else _ANONYMOUS, secrets.token_urlsafe(32), dirty=True)


def save(response):
    """after_request: write the cookie when the session changed."""
    session = g.get("dashboard_session")
    if session is not None and session.dirty:
        value = _serializer().dumps({"c": session.csrf, "b": session.binding, "s": session.sid})
        response.set_cookie(COOKIE, value, httponly=True, samesite="Strict", secure=request.is_secure, path="/")
    return response


# --- CSRF ----------------------------------------------------------------------------------------------------


def check_csrf() -> None:
    """Refuse a POST that another site started, or that lacks this session's CSRF token."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site and fetch_site not in ("same-origin", "none"):
        raise CsrfError(f"the request came from another site ({fetch_site})")
    origin = request.headers.get("Origin")
    if origin and origin != "null" and _origin(origin) != _origin(request.host_url):
        raise CsrfError("the request came from another origin")
    if origin == "null":
        raise CsrfError("the request came from an opaque origin")
    presented = request.headers.get("X-CSRF-Token") or request.form.get("csrf") or ""
    if not hmac.compare_digest(presented.encode(), load().csrf.encode()):
        raise CsrfError("the form's security token is missing or out of date")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


# --- guarding views ------------------------------------------------------------------------------------------


def wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def guard(role: Role, *, fragment: bool = False) -> Callable:
    """A dashboard view that needs `role`: signed-out browsers are sent to the sign-in page (a fragment or a
    script's POST gets 401 instead, it cannot follow a redirect usefully); a session whose token lacks the role
    gets 403 with the way out. The Host is checked first (auth.check_host), then a POST's CSRF token. Like
    auth.require, the view records its `required_role`."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            check_host()
            session = load()
            if request.method == "POST":
                try:
                    check_csrf()
                except CsrfError as exc:
                    return refusal(403, "Request refused", f"{exc}. Reload the page and try again.")
            principal = session.principal
            if principal is None:
                if fragment or request.method != "GET" or wants_json():
                    return refusal(401, "Signed out", "Your session has ended: sign in again.")
                return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")), code=303)
            if not Authenticator.allows(principal, role):
                return refusal(403, "Not allowed", f"The token {principal.name!r} has role {principal.role.value}; "
                                                   f"this needs {role.value}. Sign in with a {role.value} token.")
            g.principal = principal
            return view(*args, **kwargs)

        wrapper.required_role = role
        wrapper.access = role.value
        return wrapper

    return decorate


def refusal(status: int, title: str, detail: str):
    if wants_json():
        resp = jsonify({"error": title.lower().replace(" ", "_"), "detail": detail})
    else:
        resp = current_app.make_response(render_template("dashboard/message.html", title=title, detail=detail))
    resp.status_code = status
    return resp


def too_many_attempts(wait: int):
    """429 for an address that failed to sign in too often (auth.throttle_wait): no token is tried meanwhile."""
    resp = refusal(429, "Too many attempts", f"Too many wrong tokens from your address. Try again in {wait} s.")
    resp.headers["Retry-After"] = str(wait)
    return resp


NEXT_MAX = 2048  # longer than any page's own URL; a longer `next` is not ours
# Browsers drop tab and newline from a URL (`/\t/evil` becomes `//evil`, another host), and no header may hold them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_next(target: str | None) -> str:
    """Where to go after signing in or acting: a path on this site only, else the Now page (no open redirect).

    Refused: a scheme or host (`https://x`, `//x`), a backslash in the path (read as a slash by browsers), a
    control character; checked before and after percent-decoding (a proxy or browser may decode once more)."""
    fallback = url_for("dashboard.now")
    if not target or len(target) > NEXT_MAX:
        return fallback
    for text in (target, unquote(target)):
        path = text.split("?", 1)[0].split("#", 1)[0]
        if _CONTROL.search(text) or not path.startswith("/") or path.startswith("//") or "\\" in path:
            return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    return target
