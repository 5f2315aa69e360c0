"""The `log` channel: writes each message to the receiver's own log. Needs no credentials, so it is the default."""

from __future__ import annotations

import logging
from typing import Literal

from receiver.channels.base import Channel
from receiver.channels.markup import plain
from receiver.domain import Message
from receiver.fields import FrozenModel

log = logging.getLogger("receiver.channels.log")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class LogSettings(FrozenModel):
    type: Literal["log"]
    level: Literal["debug", "info", "warning", "error"] = "info"


class LogChannel(Channel):
    """One log record per message: the rendered text (`log/text.j2`) as the message, the facts as fields."""

    type = "log"
    waits_on_network = False
    settings: LogSettings

    def send(self, message: Message) -> None:
        # Control characters out: a label must not write terminal escapes (or NULs) into the receiver's log.
        text = plain(self.renderer.render_message("log/text.j2", message))
        log.log(_LEVELS[self.settings.level], "%s", text, extra={
            "channel": self.name,
            "notification_id": message.notification_id,
            "kind": message.kind,
            "alert_level": message.level,
            "group_key": message.group_key,
            "alerts": len(message.alerts),
            **({"recipient": message.recipient.name} if message.recipient is not None else {}),
        })
