"""The `msteams` channel: Microsoft Teams incoming webhooks / workflow URLs."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import field_validator

from receiver.fields import FrozenModel, PositiveDuration, Secret, check_url


class MsTeamsSettings(FrozenModel):
    type: Literal["msteams"]
    webhook_url: Secret
    timeout: PositiveDuration = dt.timedelta(seconds=10)

    @field_validator("webhook_url")
    @classmethod
    def _https(cls, value: Secret) -> Secret:
        check_url(value.reveal(), schemes=("https",))
        return value
