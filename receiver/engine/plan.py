"""Where a new occurrence goes: the routes it matches, the channels of its level, and when its timer fires.

Pure: the route decision for an alert at a level, given the config and `now`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Mapping, Sequence

from ..config import Config
from ..config.routes import ResolvedRoute
from ..domain import Level
from .routing import match_routes

# Channel types that take one message per occurrence instead of one per group (stable dedup_key per alert).
PER_ALERT_CHANNEL_TYPES = frozenset({"pagerduty"})


@dataclasses.dataclass(frozen=True, slots=True)
class RoutePlan:
    level: Level
    route: str  # the name of the first matching route (the one whose timers apply)
    channels: tuple[str, ...]  # union over matching routes (`continue: true`), in order, no repeats
    notify: bool  # False for routes with `escalate: false` (e.g. Watchdog): never escalated or notified
    next_action_at: dt.datetime | None
    # Beside each of `channels`, the person target it pages ("schedule:…", "person:…"), None for a plain channel;
    # empty when no channel pages a person.
    targets: tuple[str | None, ...] = ()

    def paged(self) -> tuple[tuple[str, str | None], ...]:
        """(channel, target) for each channel told."""
        return tuple(zip(self.channels, self.targets or (None,) * len(self.channels)))


def plan_route(config: Config, labels: Mapping[str, str], level: Level, now: dt.datetime) -> RoutePlan:
    routes = match_routes(config.resolved_routes(), labels)
    first = routes[0]
    if not escalates(config, first, labels):
        return RoutePlan(level, first.name, (), False, None)
    paged = paged_at(config, routes, level)
    targets = tuple(t for _, t in paged) if any(t for _, t in paged) else ()
    return RoutePlan(level, first.name, tuple(c for c, _ in paged), True,
                     next_action_at(first.policy(level), level, now), targets)


def escalates(config: Config, route: ResolvedRoute, labels: Mapping[str, str]) -> bool:
    """False for a route with `escalate: false` and, whatever the routes say, for the dead-man's own alert
    (docs/design.md: the Watchdog is never escalated or notified; it only feeds the dead-man's switch)."""
    return route.escalate and labels.get("alertname") != config.deadman.alertname


def channels_at(config: Config, routes: Sequence[ResolvedRoute], level: Level) -> tuple[str, ...]:
    """The channels told at `level`: the union over the matched routes (`continue: true`), in order, without
    repeats, less the channels that take fewer levels (SMS: L1 only by default)."""
    channels: list[str] = []
    for route in routes:
        if not route.escalate:
            continue
        for name in route.channels_for(level):
            if name not in channels and accepts_level(config, name, level):
                channels.append(name)
    return tuple(channels)


def paged_at(config: Config, routes: Sequence[ResolvedRoute], level: Level) -> tuple[tuple[str, str | None], ...]:
    """Every channel told at `level` with the person target it pages: per matched route, its plain channels
    (target None), then each schedule's or person's `via` channels (target "schedule:<name>" / "person:<name>").
    A channel is told once per level (one message per channel and level): the first mention wins."""
    told: dict[str, str | None] = {}
    for route in routes:
        if not route.escalate:
            continue
        pairs = [(name, None) for name in route.channels_for(level)]
        pairs += [(name, t.target) for t in route.targets_for(level) for name in t.via]
        for name, target in pairs:
            if name not in told and accepts_level(config, name, level):
                told[name] = target
    return tuple(told.items())


def accepts_level(config: Config, channel: str, level: Level | str) -> bool:
    settings = config.channels.get(channel)
    levels = getattr(settings, "levels", None)
    return levels is None or Level(level) in levels


def is_per_alert(config: Config, channel: str) -> bool:
    """Channels that take one message per occurrence (PagerDuty's dedup_key) rather than one per group."""
    settings = config.channels.get(channel)
    return settings is not None and settings.type in PER_ALERT_CHANNEL_TYPES


def message_key(config: Config, channel: str, alert_id: int) -> str:
    """The outbox grouping key of an intent: per occurrence for per-alert channels, else its group (the default)."""
    return f"alert:{alert_id}" if is_per_alert(config, channel) else ""


def next_action_at(policy, level: Level, entered_at: dt.datetime) -> dt.datetime | None:
    """When the engine next looks at an occurrence that just entered `level`: escalation below L1, repeat at L1."""
    delay = policy.repeat_every if level is Level.L1 else policy.escalate_after
    if delay is None and level is not Level.L1:
        delay = policy.repeat_every
    return entered_at + delay if delay is not None else None
