"""The generic `webhook` channel: POSTs one JSON document per message, HMAC-signed when a secret is set."""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import field_validator

from receiver.fields import FieldError, FrozenModel, PositiveDuration, Secret, check_url

_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field-name


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
