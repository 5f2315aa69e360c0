"""Routes: as written in receiver.yml (RouteSettings), and as the engine sees them (ResolvedRoute: every
level's channels and timers filled in from the default route)."""

from __future__ import annotations

import datetime as dt
import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, Mapping, Sequence, Union

from pydantic import (ConfigDict, Discriminator, Field, PlainSerializer, PlainValidator, Tag, WithJsonSchema,
                      field_validator, model_validator)

from receiver.config.sla_targets import RouteSla, SlaSettings, SlaTarget
from receiver.domain import Level
from receiver.fields import Duration, FieldError, FrozenModel, Name, at_least
from receiver.matchers import Matcher, MatcherError, parse_matchers

Timer = Annotated[Duration, at_least(dt.timedelta(seconds=1))]

# The channel a level goes to when the default route does not name it: nothing is dropped silently.
FALLBACK_CHANNELS = ("log",)


class LevelPolicy(FrozenModel):
    """The timers of one level: escalate to the next level after, and/or re-notify every. None = never."""

    escalate_after: Timer | None = None
    repeat_every: Timer | None = None


class TopLevelPolicy(LevelPolicy):
    """L1's block: the top level repeats but cannot escalate."""

    @field_validator("escalate_after")
    @classmethod
    def _no_escalation(cls, value: dt.timedelta | None) -> dt.timedelta | None:
        if value is not None:
            raise FieldError("L1 is the top level: it cannot escalate",
                             fix="remove escalate_after; use repeat_every to re-notify at L1")
        return value


class RouteEscalation(FrozenModel):
    """A route's overrides: every key optional; what is not named comes from the default route."""

    L3: LevelPolicy | None = None
    L2: LevelPolicy | None = None
    L1: TopLevelPolicy | None = None
    ack_ttl: Duration | None = None


_DEFAULT_POLICIES: dict[str, dict[str, dt.timedelta]] = {
    "L3": {"escalate_after": dt.timedelta(minutes=5)},
    "L2": {"escalate_after": dt.timedelta(minutes=15)},
    "L1": {"repeat_every": dt.timedelta(minutes=15)},
}


class EscalationSettings(FrozenModel):
    """Timers for every route. A level block given here is merged over the default one, key by key;
    `escalate_after: null` switches a default timer off."""

    tick: Timer = dt.timedelta(seconds=15)
    L3: LevelPolicy = LevelPolicy(**_DEFAULT_POLICIES["L3"])
    L2: LevelPolicy = LevelPolicy(**_DEFAULT_POLICIES["L2"])
    L1: TopLevelPolicy = TopLevelPolicy(**_DEFAULT_POLICIES["L1"])
    ack_ttl: Duration = dt.timedelta(0)  # 0s: an ack holds until the alert resolves

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {**data, **{lvl: {**_DEFAULT_POLICIES[lvl], **data[lvl]}
                               for lvl in _DEFAULT_POLICIES if isinstance(data.get(lvl), dict)}}
        return data

    def policy(self, level: Level) -> LevelPolicy:
        return getattr(self, level.value)


def _matcher(value: Any) -> Matcher:
    if isinstance(value, Matcher):
        return value
    found = parse_matchers(value)
    if len(found) != 1:
        raise MatcherError(f"expected one matcher per list item, got {len(found)} in {value!r}",
                           fix="write each matcher as its own item: matchers: ['a=\"b\"', 'c=\"d\"']")
    return found[0]


MatcherField = Annotated[Matcher, PlainValidator(_matcher), PlainSerializer(str, return_type=str),
                         WithJsonSchema({"type": "string", "examples": ['team="db"']})]


class PersonTarget(FrozenModel):
    """A level's page to a person: whoever is on call for `schedule` at send time, or `person`, reached through
    each `via` channel with their own address (config/people_routing.py checks the names)."""

    schedule: Name | None = None
    person: Name | None = None
    via: Annotated[tuple[Name, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _one_target(self) -> "PersonTarget":
        if (self.schedule is None) == (self.person is None):
            raise FieldError("a target names a schedule or a person" + (", not both" if self.schedule else ""),
                             fix="write {schedule: primary-db, via: [sms-oncall]} or {person: alice, via: [email-oncall]}")
        return self

    @property
    def target(self) -> str:
        """How intents and messages name it: "schedule:<name>" or "person:<name>"."""
        return f"schedule:{self.schedule}" if self.schedule is not None else f"person:{self.person}"


# The tags of a level entry's union: pydantic puts them into error paths; config/load.py takes them out again.
ENTRY_TAGS = ("channel", "target")


def _entry_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "channel"
    return "target" if isinstance(value, (dict, PersonTarget)) else None


# A level lists channel names and targets: `L1: [{schedule: primary-db, via: [sms-oncall]}, slack-critical]`.
LevelEntry = Annotated[
    Union[Annotated[Name, Tag("channel")], Annotated[PersonTarget, Tag("target")]],
    Discriminator(_entry_tag, custom_error_type="level_entry",
                  custom_error_message="a level lists channel names and {schedule: or person:, via: [channels]} "
                                       "targets"),
]


def entry_channels(entry: "str | PersonTarget") -> tuple[str, ...]:
    return (entry,) if isinstance(entry, str) else entry.via


class RouteSettings(FrozenModel):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    name: Name | None = None
    matchers: tuple[MatcherField, ...] = ()
    levels: dict[Level, tuple[LevelEntry, ...]] = {}
    escalation: RouteEscalation | None = None
    continue_: bool = Field(False, alias="continue")
    escalate: bool = True  # false: never escalated or notified (Watchdog and other dead-man's switches)
    # true: an ack also silences the alert in Alertmanager (reconcile.alertmanagers) until the ack ends.
    ack_silence: bool | None = None  # None: as the default route (false)
    sla: RouteSla | None = None  # overrides of `sla:` targets, key by key (config/sla_targets.py)
    # Names under time_intervals (config/time_intervals.py); None: as the default route; [] names none.
    mute_time_intervals: tuple[Name, ...] | None = None
    active_time_intervals: tuple[Name, ...] | None = None

    @field_validator("levels")
    @classmethod
    def _no_repeats(cls, value: dict[Level, tuple[Any, ...]]) -> dict[Level, tuple[Any, ...]]:
        # One message per channel and level (the outbox's intent key): a channel both plain and in a target's
        # `via`, or in two targets' `via`, would have to carry two messages.
        for level, entries in value.items():
            names = [n for entry in entries for n in entry_channels(entry)]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                how = "twice" if all(isinstance(e, str) for e in entries) else \
                    "twice (as a channel or in the via of a schedule or person)"
                raise FieldError(f'{level.value} lists channel "{repeated[0]}" {how}',
                                 fix="list it once: a channel carries one message per level")
        return value


IMPLICIT_DEFAULT_ROUTE = {"levels": {"L1": ["log"], "L2": ["log"], "L3": ["log"]}}


@dataclass(frozen=True)
class ResolvedRoute:
    index: int  # position in Config.routes
    name: str  # explicit, or derived: 'route[0] team="db"', 'default'
    matchers: tuple[Matcher, ...]
    channels: Mapping[Level, tuple[str, ...]]  # all three levels
    policies: Mapping[Level, LevelPolicy]  # all three levels; L1's escalate_after is always None
    ack_ttl: dt.timedelta | None  # None: an ack holds until the alert resolves
    escalate: bool  # False: never escalated or notified
    ack_silence: bool  # an ack creates an Alertmanager silence, expired on unack or resolve
    continue_: bool
    is_default: bool
    # Every level's schedules and people to page (PersonTarget), inherited with the level's channels.
    targets: Mapping[Level, tuple[PersonTarget, ...]] = dataclasses.field(default_factory=dict)
    sla: Mapping[Level, SlaTarget] = dataclasses.field(default_factory=dict)  # all three levels; off: SlaTarget()
    mute_time_intervals: tuple[str, ...] = ()  # muted in any of these (engine/mutes.py)
    active_time_intervals: tuple[str, ...] = ()  # when given, muted outside all of these

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def channels_for(self, level: Level) -> tuple[str, ...]:
        return self.channels[level]

    def targets_for(self, level: Level) -> tuple[PersonTarget, ...]:
        return tuple(self.targets.get(level, ()))

    def sla_for(self, level: Level) -> SlaTarget:
        return self.sla.get(level) or SlaTarget()

    def policy(self, level: Level) -> LevelPolicy:
        return self.policies[level]


def _merge(base: LevelPolicy, override: LevelPolicy | None) -> LevelPolicy:
    # Only keys the route names override; an explicit null switches the inherited timer off.
    if override is None:
        return base
    named = {k: getattr(override, k) for k in override.model_fields_set}
    return LevelPolicy(**{"escalate_after": base.escalate_after, "repeat_every": base.repeat_every, **named})


def _ack_ttl(route: "RouteSettings", inherited: dt.timedelta) -> dt.timedelta:
    if route.escalation is not None and route.escalation.ack_ttl is not None:
        return route.escalation.ack_ttl
    return inherited


def _own_or_default(own: tuple[str, ...] | None, default: tuple[str, ...] | None) -> tuple[str, ...]:
    return tuple(own if own is not None else default or ())


def resolve_routes(routes: Sequence["RouteSettings"], escalation: EscalationSettings,
                   sla: SlaSettings | None = None) -> tuple[ResolvedRoute, ...]:
    """Fill in every route from the default route (the last), which itself inherits from `escalation` and `sla`."""
    default = routes[-1]
    base_sla = (sla or SlaSettings()).targets()
    base_sla = default.sla.over(base_sla) if default.sla else base_sla
    base_policies = {lvl: _merge(LevelPolicy(**escalation.policy(lvl).model_dump()),
                                 getattr(default.escalation, lvl.value, None)) for lvl in Level}
    base_entries = {lvl: tuple(default.levels.get(lvl, FALLBACK_CHANNELS)) for lvl in Level}
    base_ack_ttl = _ack_ttl(default, escalation.ack_ttl)
    resolved = []
    for index, route in enumerate(routes):
        is_default = index == len(routes) - 1
        if route.name:
            name = route.name
        elif is_default:
            name = "default"
        else:
            name = f"route[{index}] " + ", ".join(map(str, route.matchers))
        ack_ttl = _ack_ttl(route, base_ack_ttl)
        resolved.append(ResolvedRoute(
            index=index,
            name=name,
            matchers=tuple(route.matchers),
            channels={lvl: tuple(e for e in route.levels.get(lvl, base_entries[lvl]) if isinstance(e, str))
                      for lvl in Level},
            policies={lvl: _merge(base_policies[lvl], getattr(route.escalation, lvl.value, None)) for lvl in Level},
            ack_ttl=ack_ttl or None,
            escalate=route.escalate,
            ack_silence=bool(route.ack_silence if route.ack_silence is not None else default.ack_silence),
            continue_=route.continue_,
            is_default=is_default,
            targets={lvl: tuple(e for e in route.levels.get(lvl, base_entries[lvl]) if not isinstance(e, str))
                     for lvl in Level},
            sla=route.sla.over(base_sla) if route.sla else base_sla,
            mute_time_intervals=_own_or_default(route.mute_time_intervals, default.mute_time_intervals),
            active_time_intervals=_own_or_default(route.active_time_intervals, default.active_time_intervals),
        ))
    return tuple(resolved)
