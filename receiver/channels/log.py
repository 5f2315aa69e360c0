"""The `log` channel: writes each message to the receiver's own log. Needs no credentials, so it is the default."""

from __future__ import annotations

from typing import Literal

from receiver.fields import FrozenModel


class LogSettings(FrozenModel):
    type: Literal["log"]
    level: Literal["debug", "info", "warning", "error"] = "info"
