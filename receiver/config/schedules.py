"""receiver.yml's `people` and `schedules`: who can be paged, and who is on shift when (engine/oncall.py computes it).

    people:
      alice: {email: alice@example.org, phone: "+4915550001", slack_user: U01ALICE, timezone: Europe/Berlin}
    schedules:
      primary-db:
        timezone: Europe/Berlin
        rotations:            # the first rotation with someone on shift wins: a daytime layer goes first
          - {participants: [carol], hours: "mon-fri 09:00-17:00"}
          - {participants: [alice, bob], length: 1w, handoff: "mon 09:00", start: 2026-01-05}
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import zoneinfo
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from receiver.channels.email import Address
from receiver.channels.twilio_sms import Phone
from receiver.fields import FieldError, FrozenModel, Name

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_LENGTH = re.compile(r"^([1-9][0-9]{0,3})([wdh])$")
_CLOCK = r"([01]?[0-9]|2[0-4]):([0-5][0-9])"
_HANDOFF = re.compile(rf"^(?:({'|'.join(WEEKDAYS)})\s+)?{_CLOCK}$")
_HOURS = re.compile(rf"^([a-z,\-]+)\s+{_CLOCK}-{_CLOCK}$")

Participant = Annotated[str, Field(min_length=1)]


@dataclasses.dataclass(frozen=True)
class Length:
    count: int
    unit: str  # "w" and "d": calendar weeks and days in the schedule's zone; "h": elapsed hours


@dataclasses.dataclass(frozen=True)
class Handoff:
    weekday: int | None  # 0 = Monday; None: any day
    time: dt.time


@dataclasses.dataclass(frozen=True)
class Hours:
    """A daily window on some weekdays, local time; `end` None means midnight at the end of the day."""

    weekdays: frozenset[int]
    start: dt.time
    end: dt.time | None


def _clock(hours: str, minutes: str, *, allow_midnight_end: bool = False) -> dt.time | None:
    h, m = int(hours), int(minutes)
    if h == 24 and m == 0 and allow_midnight_end:
        return None
    if h > 23:
        raise FieldError(f"{hours}:{minutes} is not a time of day", fix="use 00:00 to 23:59")
    return dt.time(h, m)


def parse_length(value: str) -> Length:
    found = _LENGTH.match(value.strip())
    if not found:
        raise FieldError(f"{value!r} is not a shift length", fix='write a number and w, d or h, e.g. "1w", "2d", "12h"')
    return Length(int(found.group(1)), found.group(2))


def parse_handoff(value: str) -> Handoff:
    found = _HANDOFF.match(value.strip().lower())
    if not found:
        raise FieldError(f"{value!r} is not a handoff", fix='write "mon 09:00" (a weekday and a time) or "09:00"')
    weekday = WEEKDAYS.index(found.group(1)) if found.group(1) else None
    return Handoff(weekday, _clock(found.group(2), found.group(3)))


def _weekdays(spec: str) -> frozenset[int]:
    days: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise FieldError(f"{spec!r} is not a list of weekdays", fix='write e.g. "mon-fri" or "sat,sun"')
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


def parse_hours(value: str) -> Hours:
    found = _HOURS.match(value.strip().lower())
    if not found:
        raise FieldError(f"{value!r} is not a window of hours", fix='write weekdays and a time range, e.g. "mon-fri 09:00-17:00"')
    start = _clock(found.group(2), found.group(3))
    end = _clock(found.group(4), found.group(5), allow_midnight_end=True)
    if end is not None and end <= start:
        raise FieldError(f"{value!r} ends before it starts", fix="a window stays within one day: split one that crosses midnight in two rotations")
    return Hours(_weekdays(found.group(1)), start, end)


def check_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise FieldError(f"unknown time zone {value!r}", fix='use an IANA name such as "Europe/Berlin" or "UTC"') from None
    return value


_SLACK_USER = re.compile(r"^[UW][A-Z0-9]+$")


class Person(FrozenModel):
    # The addresses a `via` channel uses when a route pages this person (config/people_routing.py).
    email: Address | None = None
    phone: Phone | None = None
    slack_user: str | None = None  # a Slack member ID (U…/W…): Slack messages mention <@ID>
    timezone: str | None = None

    @field_validator("slack_user")
    @classmethod
    def _slack_user(cls, value: str | None) -> str | None:
        if value is not None and not _SLACK_USER.fullmatch(value):
            raise FieldError(f'"{value}" is not a Slack member ID',
                             fix="copy the member ID from the person's Slack profile (… → Copy member ID), e.g. U01ALICE")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)


class Rotation(FrozenModel):
    participants: tuple[Participant, ...] = Field(min_length=1)
    length: str | None = None  # with start: participants take turns, one shift each
    handoff: str | None = None  # when a shift changes, local time; default 00:00
    start: dt.date | None = None  # the day participants[0]'s first shift begins (at the handoff time)
    hours: str | None = None  # on shift only in this window, e.g. "mon-fri 09:00-17:00"

    @field_validator("length")
    @classmethod
    def _length(cls, value: str | None) -> str | None:
        return None if value is None else (parse_length(value) and value)

    @field_validator("handoff")
    @classmethod
    def _handoff(cls, value: str | None) -> str | None:
        return None if value is None else (parse_handoff(value) and value)

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        return None if value is None else (parse_hours(value) and value)

    @model_validator(mode="after")
    def _complete(self) -> "Rotation":
        if self.length is None:
            if len(self.participants) > 1:
                raise FieldError("several participants take turns only with a shift length",
                                 fix='add length (e.g. "1w") and start, or list one participant')
            if self.handoff is not None or self.start is not None:
                raise FieldError("handoff and start mean nothing without a shift length", fix='add length, e.g. "1w"')
            return self
        if self.start is None:
            raise FieldError("a rotation with a shift length needs the day it starts",
                             fix="add start: the date participants[0]'s first shift begins, e.g. 2026-01-05")
        handoff = self.handoff_at
        if handoff.weekday is not None and self.start.weekday() != handoff.weekday:
            raise FieldError(f"start {self.start} is a {WEEKDAYS[self.start.weekday()]}, the handoff is on "
                             f"{WEEKDAYS[handoff.weekday]}", fix="start on the handoff's weekday")
        return self

    @property
    def length_of(self) -> Length | None:
        return None if self.length is None else parse_length(self.length)

    @property
    def handoff_at(self) -> Handoff:
        return parse_handoff(self.handoff) if self.handoff else Handoff(None, dt.time(0, 0))

    @property
    def window(self) -> Hours | None:
        return None if self.hours is None else parse_hours(self.hours)


class Schedule(FrozenModel):
    timezone: str = "UTC"
    rotations: tuple[Rotation, ...] = Field(min_length=1)
    # Channels paged (as plain channels) when a route pages this schedule and nobody can be reached.
    fallback: tuple[Name, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def participants(self) -> list[str]:
        return [p for rotation in self.rotations for p in rotation.participants]
