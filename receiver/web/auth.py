"""Bearer (or basic) tokens → roles, compared in constant time; decorators that state every view's access policy.

Every view carries `required_role`: a Role set by `require`, or None set by `open_access`, which also records
*why* the view needs no token (`access`: public, signature, signed_link, or a configurable role). The auth
matrix test reads both, so a new route without a decision fails it.

Every one of those decorators first checks the Host header (check_host: DNS rebinding). Failed authentication is
counted, logged once per address and window, and throttled per address (auth_failed, throttle_wait; throttle.py).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import hmac
import logging
from typing import Callable, Iterable
from urllib.parse import urlsplit

from flask import current_app, g, request

from ..config.hosts import host_of, is_loopback_host, normalise
from ..domain import Role
from .api_errors import ApiError

log = logging.getLogger("receiver.auth")

# What each role may do: admin everything, write implies read, webhook only posts webhooks.
_GRANTS: dict[Role, frozenset[Role]] = {
    Role.ADMIN: frozenset(Role),
    Role.WRITE: frozenset({Role.WRITE, Role.READ}),
    Role.READ: frozenset({Role.READ}),
    Role.WEBHOOK: frozenset({Role.WEBHOOK}),
}

# Why a view takes no bearer token (the value of its `access` attribute).
PUBLIC = "public"  # says nothing stored: health, the OpenAPI document
SIGNATURE = "signature"  # authenticated by an HMAC of the body (PagerDuty's webhooks)
SIGNED_LINK = "signed_link"  # the URL carries a signed, expiring token (one-click ack links)
CONFIGURED = "configured"  # open unless the config names a role for it (auth.metrics_role)


@dataclasses.dataclass(frozen=True)
class Principal:
    name: str
    role: Role


@dataclasses.dataclass(frozen=True)
class _Token:
    name: str
    digest: bytes  # SHA-256 of the secret: every comparison is between 32 bytes, whatever the lengths
    role: Role


def _digest(secret: bytes) -> bytes:
    return hashlib.sha256(secret).digest()


class Authenticator:
    def __init__(self, tokens: Iterable[tuple[str, str, Role]]):
        self._tokens = [_Token(name, _digest(secret.encode("utf-8")), Role(role)) for name, secret, role in tokens]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def identify(self, authorization: str | None) -> Principal | None:
        """The principal a header names, or None. The presented secret is hashed, then compared with
        `hmac.compare_digest` against every token's hash: equal lengths (so the length of a token does not
        show), and the loop never stops at a match, so timing reveals neither which token matched nor how much
        of one."""
        presented = _presented_secret(authorization)
        if presented is None:
            return None
        presented_digest = _digest(presented)
        found = None
        for token in self._tokens:
            matched = hmac.compare_digest(presented_digest, token.digest)
            if matched and found is None:
                found = Principal(token.name, token.role)
        return found

    @staticmethod
    def allows(principal: Principal | None, needed: Role) -> bool:
        return principal is not None and needed in _GRANTS[principal.role]


def _presented_secret(authorization: str | None) -> bytes | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer" and value:
        return value.encode("utf-8")
    if scheme == "basic" and value:
        # Alertmanager's http_config can send basic auth: the password is the token, the user name is ignored.
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except ValueError:
            return None
        _, sep, password = decoded.partition(":")
        return password.encode("utf-8") if sep and password else None
    return None


def check(role: Role) -> None:
    """Raise 401/403 unless the request carries a token whose role grants `role` (open when no tokens exist), 429
    while its address is throttled for failing too often; sets `g.principal`."""
    auth: Authenticator = current_app.extensions["alert_receiver"].auth
    if not auth.enabled:
        refuse_cross_site()
        g.principal = Principal("anonymous", Role.ADMIN)
        return
    header = request.headers.get("Authorization")
    kind = _kind(header)
    wait = throttle_wait(kind)
    if wait:
        raise ApiError(429, "too_many_auth_failures", f"too many failed authentications from this address; try "
                                                      f"again in {wait} s", headers={"Retry-After": str(wait)})
    principal = auth.identify(header)
    if principal is None:
        if header:  # no header is no guess: a client that was not given a token, not someone trying tokens
            auth_failed(kind)
        raise ApiError(401, "unauthorized", "a valid bearer token is required",
                       headers={"WWW-Authenticate": 'Bearer realm="alert-receiver"'})
    if not auth.allows(principal, role):
        raise ApiError(403, "forbidden", f"token {principal.name!r} has role {principal.role.value}, "
                                         f"this needs {role.value}")
    g.principal = principal


# --- failed authentication: counted, logged once per address and window, throttled (web/throttle.py) ---------

BEARER, BASIC, LOGIN = "bearer", "basic", "login"  # the `kind` label: a fixed set, never the token or address


def _kind(authorization: str | None) -> str:
    scheme = (authorization or "").strip().partition(" ")[0].lower()
    return BASIC if scheme == "basic" else BEARER  # any other scheme is a malformed bearer attempt


def _source() -> str:
    return request.remote_addr or "unknown"  # the client as TrustedProxyFix sees it (server.py)


def throttle_wait(kind: str) -> int:
    """Seconds this request's address must wait before it may authenticate again (0: it may now); a request
    refused for that is counted too."""
    svc = current_app.extensions["alert_receiver"]
    wait = svc.auth_throttle.retry_after(_source(), svc.clock.now())
    if wait:
        svc.metrics.auth_failures.labels(kind=kind, reason="throttled").inc()
    return wait


def auth_failed(kind: str) -> None:
    """Count a failed authentication; log the first of its address's window only, so that guessing cannot flood
    the log (the counter has them all)."""
    svc = current_app.extensions["alert_receiver"]
    svc.metrics.auth_failures.labels(kind=kind, reason="invalid").inc()
    throttle = svc.auth_throttle
    if throttle.failed(_source(), svc.clock.now()):
        log.warning("authentication failed; further failures from this address are counted in "
                    "alert_receiver_auth_failures_total, not logged, until the window ends, and past the limit "
                    "it is refused with 429",
                    extra={"kind": kind, "source": _source()[:100], "limit": throttle.limit,
                           "window_seconds": int(throttle.window.total_seconds())})


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def refuse_cross_site() -> None:
    """Without tokens nothing identifies the caller, so a page on another site could make the browser of someone
    on this host post to it (a form needs no CORS preflight). Browsers say where a request comes from; API
    clients and Alertmanager send neither header. With tokens a browser holds no bearer token to send."""
    if request.method in _SAFE_METHODS:
        return
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if site in ("cross-site", "same-site") or (origin is not None and origin.rstrip("/") != request.host_url.rstrip("/")):
        raise ApiError(403, "cross_site_request",
                       "a page on another site may not change this receiver; call the API directly, or configure "
                       "auth tokens")


# Orchestrators probe these with Host = the pod's address (Kubernetes); they say nothing stored.
ANY_HOST = frozenset({"ops.healthy", "ops.ready"})
_HOST_MAX = 300  # a Host header longer than any DNS name and port is not looked at
_HOST_SHOWN = 100


def check_host() -> None:
    """Refuse (421) a Host this receiver is not reached by: DNS rebinding makes a page on attacker.example
    same-origin with a receiver on loopback, so neither Origin nor Sec-Fetch-Site can tell; its Host can. Without
    tokens only loopback, server.allowed_hosts and server.public_url's host are served; with tokens (a browser
    holds none) server.allowed_hosts is enforced when set."""
    svc = current_app.extensions["alert_receiver"]
    server = svc.config.server
    if request.endpoint in ANY_HOST or (svc.auth.enabled and not server.allowed_hosts):
        return
    header = request.host
    host = host_of(header) if len(header) <= _HOST_MAX else None
    if host is not None and (is_loopback_host(host) or host in server.allowed_hosts or host == _public_host(server)):
        return
    raise ApiError(421, "host_not_allowed",
                   f"this receiver does not answer to Host {header[:_HOST_SHOWN]!r}; if that is its name, add it to "
                   "server.allowed_hosts in receiver.yml")


def _public_host(server) -> str | None:
    return normalise(urlsplit(server.public_url).hostname or "") if server.public_url else None


def require(role: Role) -> Callable:
    """Guard a view: with tokens configured, the request needs a token whose role grants `role`."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            check_host()
            check(role)
            return view(*args, **kwargs)

        wrapper.required_role = role  # read by the auth matrix test and the OpenAPI document
        wrapper.access = role.value
        return wrapper

    return decorate


def open_access(why: str, *, role_setting: Callable | None = None) -> Callable:
    """Mark a view that takes no bearer token, saying why (PUBLIC, SIGNATURE, SIGNED_LINK, CONFIGURED). The view
    itself does whatever other check `why` names; for CONFIGURED, `role_setting(config)` is the role the config
    asks for (None: open), which the view checks and the OpenAPI document shows. The Host is checked first."""
    if why not in (PUBLIC, SIGNATURE, SIGNED_LINK, CONFIGURED):
        raise ValueError(f"unknown access policy {why!r}")
    if (why == CONFIGURED) != (role_setting is not None):
        raise ValueError("role_setting goes with CONFIGURED, and only with it")

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            check_host()
            return view(*args, **kwargs)

        wrapper.required_role = None
        wrapper.access = why
        wrapper.role_setting = role_setting
        return wrapper

    return decorate
