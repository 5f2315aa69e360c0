"""The generic `webhook` channel: POSTs one JSON document per message, HMAC-signed when a secret is set.

The document is for machines: every alert of the message (no summary), times in ISO-8601 UTC, exactly the
shape in docs/design.md. `X-Alert-Receiver-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from typing import Any, Literal

from pydantic import field_validator

from receiver.channels.base import Channel, post
from receiver.channels.text import iso
from receiver.domain import Message
from receiver.fields import FieldError, FrozenModel, PositiveDuration, Secret, check_url

_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field-name

SIGNATURE_HEADER = "X-Alert-Receiver-Signature"
# Headers whose values are credentials: masked should an error body echo them.
_SENSITIVE_HEADER_RE = re.compile(r"auth|token|key|secret|password|cookie|signature", re.I)

# RFC 9110 §15.5.9: after 408 Request Timeout "the client MAY repeat that request". 429 and 5xx are
# retryable for every channel already.
RETRYABLE_CODES = (408,)


class WebhookSettings(FrozenModel):
    type: Literal["webhook"]
    url: str
    hmac_secret: Secret | None = None
    headers: dict[str, str] = {}
    timeout: PositiveDuration = dt.timedelta(seconds=10)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _TOKEN_RE.fullmatch(name):
                raise FieldError(f'"{name}" is not a valid HTTP header name', fix="use letters, digits and -")
            if "\r" in text or "\n" in text:
                raise FieldError(f'header "{name}" contains a line break', fix="remove it")
        return value


def document(message: Message) -> dict[str, Any]:
    """The generic webhook document of docs/design.md, and `recipient` when the message pages a person: their
    name and why them, never their e-mail address or phone number (a generic endpoint has no need of them)."""
    doc = {
        "kind": message.kind,
        "level": message.level,
        "group_key": message.group_key,
        "channel": message.channel,
        "alerts": [{
            "id": a.id,
            "fingerprint": a.fingerprint,
            "alertname": a.alertname,
            "status": a.status,
            "level": a.level,
            "labels": dict(a.labels),
            "annotations": dict(a.annotations),
            "starts_at": iso(a.starts_at),
            "ends_at": iso(a.ends_at),
        } for a in message.alerts],
    }
    if message.recipient is not None:
        doc["recipient"] = {"name": message.recipient.name, "source": message.recipient.source}
    return doc


def signature(secret: str, body: bytes) -> str:
    """The header value: sha256=<hex HMAC-SHA256 of body>. Receivers compare it in constant time."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookChannel(Channel):
    type = "webhook"
    settings: WebhookSettings

    def request(self, message: Message) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(document(message), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {**self.settings.headers, "Content-Type": "application/json; charset=utf-8"}
        if self.settings.hmac_secret is not None:
            headers[SIGNATURE_HEADER] = signature(self.settings.hmac_secret.reveal(), body)
        return body, headers

    def send(self, message: Message) -> None:
        body, headers = self.request(message)
        # A credential header's value, and its last word: "Bearer <token>" may be echoed as the token alone.
        secrets = [part for k, v in self.settings.headers.items() if _SENSITIVE_HEADER_RE.search(k)
                   for part in (v, *v.split()[-1:])]
        if self.settings.hmac_secret is not None:
            secrets.append(self.settings.hmac_secret.reveal())
        post(self.http, self.settings.url, what="webhook", timeout=self.settings.timeout,
             retryable_codes=RETRYABLE_CODES, secrets=secrets, data=body, headers=headers)
