"""Bearer (or basic) tokens → roles, compared in constant time; a decorator that guards a view by role."""

from __future__ import annotations

import base64
import dataclasses
import functools
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


@dataclasses.dataclass(frozen=True)
class Principal:
    name: str
    role: Role


@dataclasses.dataclass(frozen=True)
class _Token:
    name: str
    secret: bytes
    role: Role


class Authenticator:
    def __init__(self, tokens: Iterable[tuple[str, str, Role]]):
        self._tokens = [_Token(name, secret.encode("utf-8"), Role(role)) for name, secret, role in tokens]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def identify(self, authorization: str | None) -> Principal | None:
        """The principal a header names, or None. Every token is compared (constant time per token, and the
        loop does not stop at a match), so timing does not reveal which token, or how much of one, matched."""
        presented = _presented_secret(authorization)
        if presented is None:
            return None
        found = None
        for token in self._tokens:
            if hmac.compare_digest(presented, token.secret) and found is None:
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


def require(role: Role) -> Callable:
    """Guard a view: with tokens configured, the request needs a token whose role grants `role`."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            auth: Authenticator = current_app.extensions["alert_receiver"].auth
            if auth.enabled:
                principal = auth.identify(request.headers.get("Authorization"))
                if principal is None:
                    raise ApiError(401, "unauthorized", "a valid bearer token is required",
                                   headers={"WWW-Authenticate": 'Bearer realm="alert-receiver"'})
                if not auth.allows(principal, role):
                    raise ApiError(403, "forbidden", f"token {principal.name!r} has role {principal.role.value}, "
                                                     f"this needs {role.value}")
                g.principal = principal
            else:
                g.principal = Principal("anonymous", Role.ADMIN)
            return view(*args, **kwargs)

        wrapper.required_role = role  # read by the auth matrix test and the OpenAPI document
        return wrapper

    return decorate
