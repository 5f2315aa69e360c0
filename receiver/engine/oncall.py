"""Who is on call: a schedule's rotations (config/schedules.py) at an instant. Pure: no database, no clock of its own.

Shifts are computed in the schedule's time zone. A rotation with a length in weeks or days hands off at the same
wall-clock time whatever the offset (`1w` is a calendar week in the zone, so across a DST change the shift is 167
or 169 hours); a length in hours counts elapsed time. The first rotation with someone on shift wins, and the answer
holds `until` that shift ends or an earlier rotation comes on shift, whichever is first.

Overrides (made at run time, stored in the database: store/schedule_overrides.py) win over every rotation while
they hold; the latest made wins where two overlap. Callers read them and pass them in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from typing import Any, Sequence

from ..config import Config
from ..config.schedules import Rotation, Schedule
from ..domain import Override

ROTATION = "rotation"
OVERRIDE = "override"
_UTC = dt.timezone.utc


class UnknownSchedule(KeyError):
    """No schedule of this name in the config."""


@dataclasses.dataclass(frozen=True)
class OnCall:
    schedule: str
    at: dt.datetime
    person: str | None  # None: nobody on shift
    until: dt.datetime | None  # when the answer changes next; None: never
    source: str | None  # "rotation" | "override"; None when nobody is on shift

    def as_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule, "at": rfc3339(self.at), "person": self.person, "until": rfc3339(self.until),
                "source": self.source}


@dataclasses.dataclass(frozen=True)
class _Shift:
    person: str | None
    until: dt.datetime | None  # the end of this shift (person) or None if it never ends
    next_on: dt.datetime | None  # nobody on shift: when someone next is (None: never)


def on_call(config: Config, schedule: str, at: dt.datetime, overrides: Sequence[Override] = ()) -> OnCall:
    found = config.schedules.get(schedule)
    if found is None:
        raise UnknownSchedule(schedule)
    at = _aware(at)
    return _with_overrides(_resolve(schedule, found, at), [o for o in overrides if o.schedule == schedule])


def on_call_everywhere(config: Config, at: dt.datetime, overrides: Sequence[Override] = ()) -> list[OnCall]:
    return [on_call(config, name, at, overrides) for name in sorted(config.schedules)]


def _with_overrides(rotation: OnCall, overrides: Sequence[Override]) -> OnCall:
    """An override holding at the instant wins (the latest made, by id); otherwise the rotation's answer, which
    then holds only until the next override begins."""
    at = rotation.at
    holding = [o for o in overrides if o.start <= at < o.end]
    if holding:
        won = max(holding, key=lambda o: o.id)
        later = [o.start for o in overrides if o.id > won.id and at < o.start < won.end]
        return OnCall(rotation.schedule, at, won.person, min([won.end, *later]), OVERRIDE)
    starts = [o.start for o in overrides if o.start > at]
    if not starts:
        return rotation
    until = min([t for t in (rotation.until, min(starts)) if t is not None])
    return dataclasses.replace(rotation, until=until)


def shifts(config: Config, schedule: str, since: dt.datetime, until: dt.datetime, *, limit: int = 500,
           overrides: Sequence[Override] = ()) -> list[OnCall]:
    """The shifts from `since` to `until`, in order: who, from `at`, to `until` (cut at the end of the range);
    nobody's stretches left out, a person's back-to-back shifts merged. At most `limit`."""
    since, end = _aware(since), _aware(until)
    found: list[OnCall] = []
    at = since
    while at < end and len(found) < limit:
        now = on_call(config, schedule, at, overrides)
        stop = min(now.until, end) if now.until is not None else end
        if now.person is not None:
            if found and found[-1].person == now.person and found[-1].until == at:
                found[-1] = dataclasses.replace(found[-1], until=stop)
            else:
                found.append(dataclasses.replace(now, until=stop))
        at = stop
    return found


def answer(config: Config, schedule: str | None, at: dt.datetime, overrides: Sequence[Override] = ()) -> dict[str, Any]:
    """What GET /api/v1/oncall and `alert-receiver oncall --json` answer: one schedule's OnCall, or every schedule's
    (by name) with the moment asked about. Raises UnknownSchedule for a schedule receiver.yml does not name."""
    if schedule:
        return on_call(config, schedule, at, overrides).as_dict()
    return {"at": rfc3339(_aware(at)), "oncall": [o.as_dict() for o in on_call_everywhere(config, at, overrides)]}


def _resolve(name: str, schedule: Schedule, at: dt.datetime) -> OnCall:
    zone = schedule.zone
    earlier_next_on: list[dt.datetime] = []  # when a rotation before the winner comes on shift
    for rotation in schedule.rotations:
        shift = _shift(rotation, zone, at)
        if shift.person is not None:
            until = min([t for t in (shift.until, *earlier_next_on) if t is not None], default=None)
            return OnCall(name, at, shift.person, until, ROTATION)
        if shift.next_on is not None:
            earlier_next_on.append(shift.next_on)
    return OnCall(name, at, None, min(earlier_next_on, default=None), None)


def _shift(rotation: Rotation, zone: zoneinfo.ZoneInfo, at: dt.datetime) -> _Shift:
    turn = _turn(rotation, zone, at)
    window = rotation.window
    if window is None:
        return turn
    local = at.astimezone(zone)
    today = local.date()
    opens = _at(today, window.start, zone)
    closes = _at(today + dt.timedelta(days=1), dt.time(0), zone) if window.end is None else _at(today, window.end, zone)
    if local.weekday() in window.weekdays and opens <= at < closes:
        if turn.person is None:  # the rotation has not started yet
            return _Shift(None, None, _next_window(rotation, zone, max(at, turn.next_on or at)))
        until = min([t for t in (turn.until, closes) if t is not None])
        return _Shift(turn.person, until, None)
    return _Shift(None, None, _next_window(rotation, zone, at))


def _turn(rotation: Rotation, zone: zoneinfo.ZoneInfo, at: dt.datetime) -> _Shift:
    """Whose turn it is, ignoring the window of hours: one shift per participant, in order, from start."""
    length = rotation.length_of
    if length is None:
        return _Shift(rotation.participants[0], None, None)
    handoff = rotation.handoff_at.time
    first = _at(rotation.start, handoff, zone)
    if at < first:
        return _Shift(None, None, first)
    people = rotation.participants
    if length.unit == "h":
        step = dt.timedelta(hours=length.count)
        k = (at - first) // step
        return _Shift(people[k % len(people)], first + (k + 1) * step, None)
    period = length.count * (7 if length.unit == "w" else 1)

    def begins(k: int) -> dt.datetime:  # shift k's first instant
        return _at(rotation.start + dt.timedelta(days=k * period), handoff, zone)

    # The local date gives the shift; the instants settle a handoff whose wall-clock time DST skipped.
    k = (at.astimezone(zone).date() - rotation.start).days // period
    if at < begins(k):
        k -= 1
    return _Shift(people[k % len(people)], begins(k + 1), None)


def _next_window(rotation: Rotation, zone: zoneinfo.ZoneInfo, after: dt.datetime) -> dt.datetime | None:
    """The next opening of the rotation's window of hours at or after `after` (when its turn has begun)."""
    window = rotation.window
    day = after.astimezone(zone).date()
    for offset in range(8):
        candidate = _at(day + dt.timedelta(days=offset), window.start, zone)
        if candidate.astimezone(zone).weekday() in window.weekdays and candidate >= after:
            if rotation.length_of is None or candidate >= _at(rotation.start, rotation.handoff_at.time, zone):
                return candidate
    return None


def _at(day: dt.date, time: dt.time, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """A local wall-clock time on a day, as an instant in UTC (a time skipped by DST maps forward)."""
    # fold=0: a skipped time takes the offset before the change, i.e. it lands as much later as the gap
    return dt.datetime.combine(day, time, tzinfo=zone).astimezone(_UTC)


def _aware(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError("an on-call question needs an aware datetime")
    return at.astimezone(_UTC)


def rfc3339(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(_UTC).isoformat().replace("+00:00", "Z")  # as the API writes
