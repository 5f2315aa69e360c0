"""Host names the receiver answers to (server.allowed_hosts), and how a Host header is read against them.

Why: a page on rebind.attacker.example whose name is made to resolve to 127.0.0.1 (DNS rebinding) is same-origin
with the receiver in the browser's eyes; its requests carry `Host: rebind.attacker.example`. Checking Host against
the names the receiver is really reached by is what tells such a request apart (receiver/web/auth.py).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, Field

from receiver.fields import FieldError

MAX_ALLOWED_HOSTS = 100
MAX_HOST = 253  # the longest DNS name
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def _ip(text: str) -> str | None:
    """`10.0.0.5`, `::1` or `[::1]` in canonical form; None when not an address."""
    try:
        return str(ipaddress.ip_address(text[1:-1] if text.startswith("[") and text.endswith("]") else text))
    except ValueError:
        return None


def normalise(name: str) -> str | None:
    """A host name or address as compared: lower case, no trailing dot, addresses canonical; None if it is
    neither a DNS name nor an IP address (a port, a scheme, a wildcard, a space...)."""
    if not name or len(name) > MAX_HOST + 1:
        return None
    address = _ip(name)
    if address is not None:
        return address
    name = name.lower()
    name = name[:-1] if name.endswith(".") else name
    if not name or len(name) > MAX_HOST or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        return None
    return name


def host_of(header: str) -> str | None:
    """The host of a Host header (`name`, `name:port`, `1.2.3.4:80`, `[::1]:9095`), normalised; None if malformed."""
    if header.startswith("["):
        end = header.find("]")
        host, rest = header[:end + 1], header[end + 1:] if end > 0 else "x"
    else:
        host, _, port = header.partition(":")
        rest = f":{port}" if port else ""
    if rest and not re.fullmatch(r":\d{1,5}", rest):
        return None
    return normalise(host)


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (`host` normalised)."""
    if host == "localhost":
        return True
    address = _ip(host)
    return address is not None and ipaddress.ip_address(address).is_loopback


def _check_host_name(value: str) -> str:
    name = normalise(value.strip())
    if name is None:
        raise FieldError(f"{value[:60]!r} is not a host name or IP address",
                         fix="write the name alone, as browsers send it in Host: alerts.example.org (no scheme, "
                             "port, path or wildcard)")
    return name


HostName = Annotated[str, AfterValidator(_check_host_name)]
AllowedHosts = Annotated[tuple[HostName, ...], Field(max_length=MAX_ALLOWED_HOSTS)]
