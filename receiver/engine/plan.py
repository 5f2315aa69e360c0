"""Where a new occurrence goes: the routes it matches, the channels of its level, and when its timer fires.

Pure: the route decision for an alert at a level, given the config and `now`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Mapping

from ..config import Config
from ..domain import Level
from .routing import match_routes


@dataclasses.dataclass(frozen=True, slots=True)
class RoutePlan:
    level: Level
    route: str  # the name of the first matching route (the one whose timers apply)
    channels: tuple[str, ...]  # union over matching routes (`continue: true`), in order, no repeats
    notify: bool  # False for routes with `escalate: false` (e.g. Watchdog): never escalated or notified
    next_action_at: dt.datetime | None


def plan_route(config: Config, labels: Mapping[str, str], level: Level, now: dt.datetime) -> RoutePlan:
    routes = match_routes(config.resolved_routes(), labels)
    first = routes[0]
    if not first.escalate:
        return RoutePlan(level, first.name, (), False, None)
    channels: list[str] = []
    for route in routes:
        if not route.escalate:
            continue
        for name in route.channels_for(level):
            if name not in channels:
                channels.append(name)
    return RoutePlan(level, first.name, tuple(channels), True, next_action_at(first.policy(level), level, now))


def next_action_at(policy, level: Level, entered_at: dt.datetime) -> dt.datetime | None:
    """When the engine next looks at an occurrence that just entered `level`: escalation below L1, repeat at L1."""
    delay = policy.repeat_every if level is Level.L1 else policy.escalate_after
    if delay is None and level is not Level.L1:
        delay = policy.repeat_every
    return entered_at + delay if delay is not None else None
