"""Routing to people, checked: the schedules, people and `via` channels a route's levels name, the channels a
schedule falls back to, and that every person a target can page has the address each `via` channel needs.

    routes:
      - levels: {L1: [{schedule: primary-db, via: [sms-oncall, email-oncall]}, slack-critical]}

A channel's `to:` is optional when it only serves people (through `via`); a channel without `to:` named as a plain
channel (or as a schedule's fallback) would reach nobody, and is an error. Called from Config's cross-check.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable

from receiver.config.errors import ConfigProblem, key_path
from receiver.config.routes import PersonTarget

# The Config (config/model.py) is passed in, not imported: model.py calls this module from its cross-check.
Config = Any

# What a person must have for a `via` channel of each type to reach them (engine/paging.py sends with it); other
# types (webhook, msteams, pagerduty, log) carry the person's name and need no address.
ADDRESS_OF_TYPE = {"email": "email", "twilio_sms": "phone", "slack": "slack_user", "slack_app": "slack_user"}


def address_needed(config: Config, channel: str) -> str | None:
    """The Person field a `via` channel sends to: "email", "phone", "slack_user", or None."""
    settings = config.channels.get(channel)
    return None if settings is None else ADDRESS_OF_TYPE.get(settings.type)


def lacks_to(settings: Any) -> bool:
    """A channel that may leave out `to:` (email, twilio_sms) and did."""
    return "to" in type(settings).model_fields and getattr(settings, "to", None) is None


def check_people_routing(config: Config) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for i, route in enumerate(config.routes):
        for level, entries in route.levels.items():
            for j, entry in enumerate(entries):
                where = ("routes", i, "levels", level.value, j)
                if isinstance(entry, PersonTarget):
                    problems += _check_target(config, entry, where, level)
                else:
                    problems += _check_plain(config, entry, where, "route")
    for name, schedule in config.schedules.items():
        for k, channel in enumerate(schedule.fallback):
            where = ("schedules", name, "fallback", k)
            problems += _undefined(config, channel, where) or _check_plain(config, channel, where, "fallback")
    return problems


def _check_plain(config: Config, channel: str, where: tuple, used_as: str) -> list[ConfigProblem]:
    settings = config.channels.get(channel)
    if settings is None or not lacks_to(settings):
        return []  # an undefined channel is reported by _check_routes
    what = "a plain channel" if used_as == "route" else "a schedule's fallback"
    return [ConfigProblem(key_path(where), f'channel "{channel}" has no `to:`, and as {what} it would reach nobody',
                          f'add to: to channel "{channel}", or name it only in the via: of a schedule or person')]


def _check_target(config: Config, target: PersonTarget, where: tuple, level: Any) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    if target.schedule is not None and target.schedule not in config.schedules:
        problems.append(_unknown("schedule", target.schedule, config.schedules, (*where, "schedule")))
    if target.person is not None and target.person not in config.people:
        problems.append(_unknown("person", target.person, config.people, (*where, "person")))
    known = not problems  # an unknown schedule or person has no one whose addresses could be checked
    for k, channel in enumerate(target.via):
        found = _undefined(config, channel, (*where, "via", k))
        if found:
            problems += found
            continue
        field = address_needed(config, channel)
        levels = getattr(config.channels[channel], "levels", None)
        if field is None or not known or (levels is not None and level not in levels):
            continue  # no address needed, or never told at this level (SMS: L1 only by default)
        for person in _who(config, target):
            if getattr(config.people[person], field, None) is None:
                problems.append(ConfigProblem(
                    key_path((*where, "via", k)),
                    f'{person} has no {field}, which channel "{channel}" needs to reach them ({target.target})',
                    f"add {field} to people.{person}, or take {channel} out of this via"))
    return problems


def _who(config: Config, target: PersonTarget) -> Iterable[str]:
    """Everyone the target may page: the person, or every participant of the schedule."""
    if target.person is not None:
        return [target.person]
    return list(dict.fromkeys(config.schedules[target.schedule].participants()))


def _undefined(config: Config, channel: str, where: tuple) -> list[ConfigProblem]:
    if channel in config.channels:
        return []
    defined = sorted(config.channels)
    close = difflib.get_close_matches(channel, defined, n=1)
    hint = f'did you mean "{close[0]}"? or ' if close else ""
    return [ConfigProblem(key_path(where), f'undefined channel "{channel}"',
                          f"{hint}define it under channels:" + (f", or use one of: {', '.join(defined)}"
                                                                 if defined else ""))]


def _unknown(kind: str, name: str, known: dict, where: tuple) -> ConfigProblem:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    hint = f'did you mean "{close[0]}"? or ' if close else ""
    section = "schedules" if kind == "schedule" else "people"
    return ConfigProblem(key_path(where), f'unknown {kind} "{name}"',
                         f"{hint}define {name} under {section}:" + (f" (defined: {', '.join(sorted(known))})"
                                                                      if known else ""))
