"""What happens to an occurrence whose timer fired: escalate one level, repeat at its level, or resume after an
ack expired. Pure: a route's policy and a level in, a Step out; engine/tick.py applies Steps set-based in SQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

from ..config.routes import ResolvedRoute
from ..domain import EventKind, Level, NotificationKind


class Action(str, enum.Enum):
    ESCALATE = "escalate"
    REPEAT = "repeat"
    RESUME = "resume"  # an ack expired: notify the current level again and restart its timer
    NONE = "none"  # the timer fired but the policy no longer has one (a reload removed it): just clear it


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    action: Action
    from_level: Level
    to_level: Level
    next_delay: dt.timedelta | None  # the timer of the level after the step; None: no further timer

    @property
    def notification_kind(self) -> NotificationKind | None:
        return {Action.ESCALATE: NotificationKind.ESCALATED, Action.REPEAT: NotificationKind.REPEAT,
                Action.RESUME: NotificationKind.REPEAT}.get(self.action)

    @property
    def event_kind(self) -> EventKind | None:
        return {Action.ESCALATE: EventKind.ESCALATED, Action.REPEAT: EventKind.REPEATED,
                Action.RESUME: EventKind.ACK_EXPIRED}.get(self.action)

    @property
    def bumps_repeat(self) -> bool:
        """Repeat numbers count every re-notification of an occurrence (repeats and resumed acks)."""
        return self.action in (Action.REPEAT, Action.RESUME)


def level_delay(route: ResolvedRoute, level: Level) -> dt.timedelta | None:
    """How long an occurrence stays at `level` before the engine acts: escalate_after below L1 (repeat_every
    when a level only repeats), repeat_every at L1; None when the level has no timer."""
    policy = route.policy(level)
    if level is not Level.L1 and policy.escalate_after is not None:
        return policy.escalate_after
    return policy.repeat_every


def due_step(route: ResolvedRoute, level: Level, *, acked: bool) -> Step:
    """The step for an occurrence at `level` on `route` whose next_action_at has passed."""
    if acked:
        return Step(Action.RESUME, level, level, level_delay(route, level))
    policy = route.policy(level)
    if level is not Level.L1 and policy.escalate_after is not None:
        to = level.up()
        return Step(Action.ESCALATE, level, to, level_delay(route, to))
    if policy.repeat_every is not None:
        return Step(Action.REPEAT, level, level, policy.repeat_every)
    return Step(Action.NONE, level, level, None)


def manual_step(route: ResolvedRoute, level: Level, target: Level | None) -> Step | None:
    """A person escalates: one level up, or straight to `target`; None when that is not above `level`."""
    to = target if target is not None else level.up()
    if to.rank <= level.rank:
        return None
    return Step(Action.ESCALATE, level, to, level_delay(route, to))
