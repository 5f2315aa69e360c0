"""The `twilio_sms` channel: SMS through Twilio's Messages API."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator

from receiver.fields import FieldError, FrozenModel, PositiveDuration, Secret, check_url

_E164_RE = re.compile(r"\+[1-9][0-9]{7,14}")


def _phone(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML reads an unquoted +15551111111 as the integer 15551111111.
        raise FieldError(f"phone number {value} is not a string", fix=f'quote it: "+{value}"')
    if isinstance(value, str) and not _E164_RE.fullmatch(value):
        raise FieldError(f'"{value}" is not an E.164 phone number',
                         fix='write + and the country code, 8 to 15 digits, no spaces: "+15551234567"')
    return value


Phone = Annotated[str, BeforeValidator(_phone)]


class TwilioSmsSettings(FrozenModel):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    type: Literal["twilio_sms"]
    account_sid: Annotated[str, Field(min_length=1)]
    auth_token: Secret
    from_number: Phone = Field(alias="from")
    to: Annotated[tuple[Phone, ...], Field(min_length=1)]
    timeout: PositiveDuration = dt.timedelta(seconds=10)
    # Not in the DESIGN example: lets tests and proxies point the channel elsewhere.
    api_url: str = "https://api.twilio.com"

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)
