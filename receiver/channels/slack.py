"""The `slack` channel: Slack incoming webhooks (one URL per Slack channel)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, field_validator

from receiver.fields import FrozenModel, Number, PositiveDuration, Secret, check_url


class SlackSettings(FrozenModel):
    type: Literal["slack"]
    webhook_url: Secret
    username: str | None = None
    icon_emoji: str | None = None
    timeout: PositiveDuration = dt.timedelta(seconds=10)
    # Slack allows about one message per second per incoming webhook.
    rate_limit_per_second: Annotated[Number, Field(gt=0)] = 1.0

    @field_validator("webhook_url")
    @classmethod
    def _https(cls, value: Secret) -> Secret:
        check_url(value.reveal(), schemes=("https",))
        return value
