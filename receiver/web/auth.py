"""Bearer (or basic) tokens → roles, compared in constant time; decorators that state every view's access policy.

Every view carries `required_role`: a Role set by `require`, or None set by `open_access`, which also records
*why* the view needs no token (`access`: public, signature, signed_link, or a configurable role). The auth
matrix test reads both, so a new route without a decision fails it.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import hmac
from typing import Callable, Iterable

from flask import current_app, g, request

from ..domain import Role
from .errors import ApiError

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
    """Raise 401/403 unless the request carries a token whose role grants `role` (open when no tokens exist);
    sets `g.principal`."""
    auth: Authenticator = current_app.extensions["alert_receiver"].auth
    if not auth.enabled:
        refuse_cross_site()
        g.principal = Principal("anonymous", Role.ADMIN)
        return
    principal = auth.identify(request.headers.get("Authorization"))
    if principal is None:
        raise ApiError(401, "unauthorized", "a valid bearer token is required",
                       headers={"WWW-Authenticate": 'Bearer realm="alert-receiver"'})
    if not auth.allows(principal, role):
        raise ApiError(403, "forbidden", f"token {principal.name!r} has role {principal.role.value}, "
                                         f"this needs {role.value}")
    g.principal = principal


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


def require(role: Role) -> Callable:
    """Guard a view: with tokens configured, the request needs a token whose role grants `role`."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            check(role)
            return view(*args, **kwargs)

        wrapper.required_role = role  # read by the auth matrix test and the OpenAPI document
        wrapper.access = role.value
        return wrapper

    return decorate


def open_access(why: str, *, role_setting: Callable | None = None) -> Callable:
    """Mark a view that takes no bearer token, saying why (PUBLIC, SIGNATURE, SIGNED_LINK, CONFIGURED). The view
    itself does whatever other check `why` names; for CONFIGURED, `role_setting(config)` is the role the config
    asks for (None: open), which the view checks and the OpenAPI document shows."""
    if why not in (PUBLIC, SIGNATURE, SIGNED_LINK, CONFIGURED):
        raise ValueError(f"unknown access policy {why!r}")
    if (why == CONFIGURED) != (role_setting is not None):
        raise ValueError("role_setting goes with CONFIGURED, and only with it")

    def decorate(view: Callable) -> Callable:
        view.required_role = None
        view.access = why
        view.role_setting = role_setting
        return view

    return decorate
