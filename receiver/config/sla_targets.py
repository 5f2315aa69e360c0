"""SLA targets per level: acknowledge, and resolve, within a duration of entering a level.

`sla:` in receiver.yml holds the targets of every route (defaults: L1 ack 5m, resolve 30m; L2 ack 15m, resolve
2h; L3 none) and the channels told of a breach; a route overrides them key by key (`routes[].sla`), like its
timers. The engine records breaches (engine/sla_breaches.py); statistics/read_sla.py measures compliance from the
flags each occurrence carries (`flag`).
"""

from __future__ import annotations

import datetime as dt
import difflib
from typing import Annotated, Any, Callable, Mapping, Sequence

from pydantic import field_validator, model_validator

from receiver.config.errors import ConfigProblem, key_path
from receiver.domain import Level
from receiver.fields import Duration, FieldError, FrozenModel, Name, at_least, format_duration

Target = Annotated[Duration, at_least(dt.timedelta(seconds=1))]
TARGETS = ("ack", "resolve")  # the two targets of a level, in the order they are shown

# alerts.sla_flags: four bits per level — the occurrence was at the level, was acknowledged while at it, breached
# its ack target, breached its resolve target there. Set by ingest (the first level), the tick and escalation by
# hand (each level entered), the ack, and engine/sla_breaches.py; read by statistics/read_sla.py.
VISITED, ACKED, ACK_BREACHED, RESOLVE_BREACHED = 1, 2, 4, 8
BREACHED = {"ack": ACK_BREACHED, "resolve": RESOLVE_BREACHED}
_SHIFT = {"L1": 0, "L2": 4, "L3": 8}


def flag(level: "Level | str", what: int) -> int:
    """The bit of `what` (VISITED, ACKED, ACK_BREACHED, RESOLVE_BREACHED) at `level`, for alerts.sla_flags."""
    return what << _SHIFT[Level(level).value]


_MIN = dt.timedelta(minutes=1)
_DEFAULTS: dict[str, dict[str, dt.timedelta]] = {
    "L1": {"ack": 5 * _MIN, "resolve": 30 * _MIN},
    "L2": {"ack": 15 * _MIN, "resolve": 120 * _MIN},
    "L3": {},
}
_OFF = {"ack": None, "resolve": None}


class SlaTarget(FrozenModel):
    """Acknowledge, and resolve, within this long of entering the level; None: no target."""

    ack: Target | None = None
    resolve: Target | None = None

    def get(self, target: str) -> dt.timedelta | None:
        return getattr(self, target)


def _level_null_is_off(data: Any) -> Any:
    # `L3: null` (a whole level) switches both of its targets off, as `ack: null` switches one.
    if isinstance(data, dict):
        data = {**data, **{lvl: dict(_OFF) for lvl in _DEFAULTS if lvl in data and data[lvl] is None}}
    return data


class RouteSla(FrozenModel):
    """A route's overrides: what it does not name comes from `sla:` (through the default route's overrides)."""

    L1: SlaTarget | None = None
    L2: SlaTarget | None = None
    L3: SlaTarget | None = None

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, data: Any) -> Any:
        return _level_null_is_off(data)

    def over(self, base: Mapping[Level, SlaTarget]) -> dict[Level, SlaTarget]:
        """`base` with the keys this route names replaced (an explicit null switches a target off)."""
        out = dict(base)
        for level in Level:
            given = getattr(self, level.value)
            if given is not None:
                out[level] = base[level].model_copy(update={k: getattr(given, k) for k in given.model_fields_set})
        return out


class SlaSettings(FrozenModel):
    """Targets for every route. A level block given here is merged over the default one, key by key;
    `ack: null` switches a default target off, `L2: null` both."""

    L1: SlaTarget = SlaTarget(**_DEFAULTS["L1"])
    L2: SlaTarget = SlaTarget(**_DEFAULTS["L2"])
    L3: SlaTarget = SlaTarget()
    notify: tuple[Name, ...] = ()  # channels told of every breach; none: the breach is an event and a metric

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        data = _level_null_is_off(data)
        if isinstance(data, dict):
            data = {**data, **{lvl: {**_DEFAULTS[lvl], **data[lvl]}
                               for lvl in _DEFAULTS if isinstance(data.get(lvl), dict)}}
        return data

    @field_validator("notify")
    @classmethod
    def _once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({n for n in value if value.count(n) > 1})
        if repeated:
            raise FieldError(f'notify lists channel "{repeated[0]}" twice', fix="list it once")
        return value

    def targets(self) -> dict[Level, SlaTarget]:
        return {level: getattr(self, level.value) for level in Level}


def route_targets(routes: Sequence[Any]) -> tuple[dict[str, Mapping[Level, SlaTarget]], Mapping[Level, SlaTarget]]:
    """Each route's targets by name, and the default route's (`routes`: Config.resolved_routes(), default last): an
    occurrence whose route a reload removed is held to the default route's targets, as it gets its timers."""
    return {r.name: r.sla for r in routes}, routes[-1].sla


def check_sla(sla: SlaSettings, channels: Mapping[str, Any]) -> list[ConfigProblem]:
    """Config's cross-check: every `sla.notify` channel exists and has an address of its own."""
    problems = []
    defined = sorted(channels)
    for i, name in enumerate(sla.notify):
        settings = channels.get(name)
        if settings is None:
            close = difflib.get_close_matches(name, defined, n=1)
            hint = f'did you mean "{close[0]}"? or ' if close else ""
            problems.append(ConfigProblem(key_path(("sla", "notify", i)), f'undefined channel "{name}"',
                                          f"{hint}define it under channels:" + (
                                              f", or use one of: {', '.join(defined)}" if defined else "")))
        elif "to" in type(settings).model_fields and getattr(settings, "to", None) is None:  # serves people only
            problems.append(ConfigProblem(key_path(("sla", "notify", i)),
                                          f'channel "{name}" has no to: and would reach nobody',
                                          f"give {name} a to:, or notify another channel"))
    return problems


def lookup(routes: Sequence[Any]) -> Callable[[str | None, str | None], SlaTarget]:
    """target(route name, level) for an occurrence as stored: SlaTarget() (none) for a level it does not know."""
    by_route, default = route_targets(routes)

    def target(route: str | None, level: str | None) -> SlaTarget:
        targets = by_route.get(route or "", default)
        return targets.get(Level(level), SlaTarget()) if level in _DEFAULTS else SlaTarget()

    return target


def describe(targets: Mapping[Level, SlaTarget]) -> str:
    """`L1 ack 5m, resolve 30m; L2 ack 15m, resolve 2h; L3 none`: a route's targets, for `routes test`."""
    parts = []
    for level in Level:
        t = targets.get(level) or SlaTarget()
        named = [f"{k} {format_duration(t.get(k))}" for k in TARGETS if t.get(k) is not None]
        parts.append(f"{level.value} " + (", ".join(named) or "none"))
    return "; ".join(parts)
