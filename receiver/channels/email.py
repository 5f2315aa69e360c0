"""The `email` channel: SMTP with STARTTLS (port 587) or implicit TLS (`ssl: true`, port 465)."""

from __future__ import annotations

import datetime as dt
import email.utils
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from receiver.fields import FieldError, FrozenModel, Integer, PositiveDuration, Secret


def _address(value: str) -> str:
    # Accepts "alerts@example.org" and "Alerts <alerts@example.org>".
    _, addr = email.utils.parseaddr(value)
    local, _, domain = addr.rpartition("@")
    if not local or "." not in domain or " " in addr:
        raise FieldError(f'"{value}" is not an e-mail address', fix="write e.g. oncall@example.org")
    return value


Address = Annotated[str, AfterValidator(_address)]


class EmailSettings(FrozenModel):
    # `from` is a Python keyword: the attribute is from_addr, the YAML key `from`.
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    type: Literal["email"]
    smtp_host: Annotated[str, Field(min_length=1)]
    smtp_port: Annotated[Integer, Field(ge=1, le=65535)] = 587
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password: Secret | None = None
    from_addr: Address = Field(alias="from")
    to: Annotated[tuple[Address, ...], Field(min_length=1)]
    timeout: PositiveDuration = dt.timedelta(seconds=10)

    @model_validator(mode="after")
    def _tls_and_login(self) -> "EmailSettings":
        if self.ssl and self.starttls:
            if "starttls" in self.model_fields_set:
                raise FieldError("starttls and ssl are both true; they are mutually exclusive",
                                 fix="ssl: true for implicit TLS (port 465), or starttls: true for port 587")
            # `ssl: true` alone means implicit TLS: the starttls default and port 587 give way. The model is
            # frozen, and this is its own validation, so it may still set its fields.
            object.__setattr__(self, "starttls", False)
            if "smtp_port" not in self.model_fields_set:
                object.__setattr__(self, "smtp_port", 465)
        if (self.username is None) != (self.password is None):
            raise FieldError("username and password go together", fix="set both, or neither for an open relay")
        return self
