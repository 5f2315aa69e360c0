"""Signed, expiring one-click acknowledge links: `/a/<token>`, where the token names one occurrence and an
expiry, signed with HMAC-SHA256 under a key kept in the database (so every process and replica agrees on it,
and nobody has to configure one). A token grants exactly one thing: acknowledging that occurrence.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import struct

import sqlalchemy as sa

from ..store.write_port import Writes
from ..store.models import ReceiverState

_state = ReceiverState.__table__
_KEY_NAME = "ack_link_key"
_LAYOUT = struct.Struct(">QI")  # alert id, expiry as Unix seconds
_MAC_BYTES = 16

DEFAULT_VALIDITY = dt.timedelta(days=7)


class LinkError(ValueError):
    """A token that is malformed, forged or expired; the message says which, for the confirm page."""


def link_key(writes: Writes, *, now: dt.datetime) -> bytes:
    """The signing key, created once per database by whichever process needs it first."""
    with writes.db.connect() as conn:
        value = conn.scalar(sa.select(_state.c.value).where(_state.c.key == _KEY_NAME))
    if value is None:
        from ..store.sql import insert_ignore

        with writes.transaction() as conn:
            conn.execute(insert_ignore(conn, _state).values(key=_KEY_NAME, value=secrets.token_hex(32), updated_at=now))
            value = conn.scalar(sa.select(_state.c.value).where(_state.c.key == _KEY_NAME))
    return bytes.fromhex(value)


def make_token(key: bytes, alert_id: int, *, expires: dt.datetime) -> str:
    body = _LAYOUT.pack(alert_id, int(expires.timestamp()))
    mac = hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")


def read_token(key: bytes, token: str, *, now: dt.datetime) -> int:
    """The alert id a valid token names; LinkError otherwise."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raise LinkError("this link is not a valid acknowledge link") from None
    if len(raw) != _LAYOUT.size + _MAC_BYTES:
        raise LinkError("this link is not a valid acknowledge link")
    body, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size:]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]):
        raise LinkError("this link is not a valid acknowledge link")
    alert_id, expires = _LAYOUT.unpack(body)
    if now.timestamp() > expires:
        raise LinkError("this acknowledge link has expired; acknowledge from the receiver or the API instead")
    return alert_id
