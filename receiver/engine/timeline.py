"""The escalation an unacknowledged, still-firing alert would go through: for `routes test` and the docs.

Pure: the same route and timer decisions the engine makes (plan.plan_route), laid out on a time line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Mapping

from ..config import Config
from ..domain import Level
from ..fields import format_duration
from .plan import plan_route
from .routing import level_for, match_routes


@dataclasses.dataclass(frozen=True)
class Step:
    after: dt.timedelta
    level: Level
    kind: str  # firing | escalated | repeat
    channels: tuple[str, ...]
    targets: tuple[str | None, ...] = ()  # beside each channel, the schedule or person it pages (plan.RoutePlan)

    def __str__(self) -> str:
        told = [f"{c} ({t})" if t else c for c, t in zip(self.channels, self.targets or (None,) * len(self.channels))]
        return f"+{format_duration(self.after)} {self.level.value} {self.kind} → {', '.join(told) or '(nobody)'}"


@dataclasses.dataclass(frozen=True)
class Timeline:
    routes: tuple[str, ...]
    start_level: Level
    severity_known: bool
    notify: bool
    steps: tuple[Step, ...]
    repeat_every: dt.timedelta | None  # the L1 repeat that goes on after the last step


def escalation_timeline(config: Config, labels: Mapping[str, str], *, repeats: int = 1) -> Timeline:
    origin = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    decision = level_for(config.levels, labels)
    routes = tuple(r.name for r in match_routes(config.resolved_routes(), labels))
    level, at, kind = decision.level, origin, "firing"
    steps: list[Step] = []
    first = plan_route(config, labels, level, at)
    if not first.notify:
        return Timeline(routes, level, decision.known, False, (), None)
    repeat_every = None
    shown_repeats = 0
    while True:
        plan = plan_route(config, labels, level, at)
        steps.append(Step(at - origin, level, kind, plan.channels, plan.targets))
        if plan.next_action_at is None:
            break
        if level is Level.L1:
            repeat_every = plan.next_action_at - at
            if shown_repeats >= repeats:
                break
            shown_repeats += 1
            kind = "repeat"
        else:
            level, kind = level.up(), "escalated"
        at = plan.next_action_at
    return Timeline(routes, decision.level, decision.known, True, tuple(steps), repeat_every)
