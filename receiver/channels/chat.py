"""What chat channels share (Slack, the Slack app, Mattermost, Google Chat, Teams, Telegram): the repeat digest.

A chat channel is read by a team, not paged to one person: twenty groups repeating every fifteen minutes must not
post eighty messages an hour into it. Repeats to a chat channel are held to the next `window` boundary (so the
repeats of one minute fall due together), and when at least `min_groups` groups' repeats are due in that window
the dispatcher sends them as one digest message (Message.digest_groups) instead of one message per group.
`repeat_digest: null` switches it off (each repeat is its own message, in its group's thread where the channel
threads).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field

from receiver.fields import Duration, FrozenModel, at_least


class RepeatDigest(FrozenModel):
    """Repeats due within one `window` for at least `min_groups` groups go out as one message."""

    window: Annotated[Duration, at_least(dt.timedelta(seconds=1))] = dt.timedelta(minutes=1)
    min_groups: Annotated[int, Field(ge=2, le=1000)] = 3


class ChatSettings(FrozenModel):
    """Base of a chat channel's settings model: the repeat digest, on by default."""

    repeat_digest: RepeatDigest | None = RepeatDigest()


def digest_window_end(now: dt.datetime, window: dt.timedelta) -> dt.datetime:
    """The first window boundary at or after `now` (boundaries are multiples of `window` since the Unix epoch),
    when a repeat created at `now` falls due: repeats of one window are claimed together."""
    epoch = dt.datetime(1970, 1, 1, tzinfo=now.tzinfo or dt.timezone.utc)
    size = window.total_seconds()
    elapsed = (now - epoch).total_seconds()
    steps = -(-elapsed // size)  # ceiling
    return epoch + dt.timedelta(seconds=steps * size)
