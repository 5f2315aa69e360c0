"""The `pagerduty` channel: PagerDuty Events API v2."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, field_validator

from receiver.fields import FrozenModel, Integer, PositiveDuration, Secret, check_url


class PagerDutySettings(FrozenModel):
    type: Literal["pagerduty"]
    routing_key: Secret  # an integration key, usually 32 characters; only non-empty is checked
    url: str = "https://events.pagerduty.com/v2/enqueue"
    source: str | None = None  # payload.source; the alert's instance label when unset
    timeout: PositiveDuration = dt.timedelta(seconds=10)
    # PagerDuty accepts about 120 events per minute per routing key.
    rate_limit_per_minute: Annotated[Integer, Field(gt=0)] = 120

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)
