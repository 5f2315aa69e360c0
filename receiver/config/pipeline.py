"""receiver.yml's `deadman` and `reconcile` sections: how the receiver watches the alerting pipeline itself."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, field_validator

from receiver.fields import Duration, FieldError, FrozenModel, PositiveDuration, at_least, check_url

NonEmpty = Annotated[str, Field(min_length=1)]


class DeadmanSettings(FrozenModel):
    """The dead-man's switch (engine/deadman.py): no firing `alertname` for `timeout` raises AlertingPipelineDown."""

    # auto: armed once a Watchdog has ever been received; true: from the start; false: never.
    enabled: bool | Literal["auto"] = "auto"
    alertname: NonEmpty = "Watchdog"
    # Alertmanager repeats the Watchdog every 60-90 s (alertmanager.yml): the timeout must be well above that.
    timeout: Annotated[Duration, at_least(dt.timedelta(seconds=10))] = dt.timedelta(minutes=5)


class ReconcileSettings(FrozenModel):
    """The reconciler (engine/reconcile.py) and ack silences: off while `alertmanagers` is empty."""

    alertmanagers: tuple[str, ...] = ()  # base URLs, e.g. http://alertmanager-0:9093 (every member of an HA pair)
    interval: Annotated[Duration, at_least(dt.timedelta(seconds=1))] = dt.timedelta(minutes=1)
    # An occurrence received less than this ago is never resolved by a poll, and an Alertmanager started less than
    # this ago is not trusted (it keeps no alerts across a restart; Prometheus re-sends them within a minute or so).
    grace: Duration = dt.timedelta(minutes=2)
    timeout: PositiveDuration = dt.timedelta(seconds=10)  # per HTTP request
    ack_silence_ttl: PositiveDuration = dt.timedelta(hours=4)  # a silence for an ack that has no expiry

    @field_validator("alertmanagers")
    @classmethod
    def _urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        urls = tuple(check_url(url).rstrip("/") for url in value)
        if len(set(urls)) != len(urls):
            raise FieldError("an Alertmanager is listed twice", fix="list each URL once")
        return urls

    @property
    def enabled(self) -> bool:
        return bool(self.alertmanagers)
