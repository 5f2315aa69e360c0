"""receiver.yml's `time_intervals`: named periods in Alertmanager's own syntax, for routes' `mute_time_intervals`
and `active_time_intervals` (engine/mutes.py applies them).

    time_intervals:
      nights-and-weekends:
        - {times: [{start_time: "00:00", end_time: "08:00"}], weekdays: ["monday:friday"], location: Europe/Berlin}
        - {weekdays: [saturday, sunday], location: Europe/Berlin}

Semantics are Alertmanager's (timeinterval.ContainsTime): an interval matches when ANY of its entries matches; an
entry matches when ALL of the fields it gives match, each field when ANY of its items does. Ranges are inclusive,
`end_time` is exclusive (24:00 allowed), the week begins on Sunday (so "saturday:sunday" is an error, as in
Alertmanager), negative days of month count from the month's end (-1 is its last day). Times are the wall clock of
`location` (default UTC) at minute precision. Alertmanager's list form (`- name: x` / `time_intervals: [...]`) is
accepted as well.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import difflib
import heapq
import re
import zoneinfo
from typing import Annotated, Any, Iterator, Mapping, Sequence

from pydantic import BeforeValidator, PlainSerializer, PlainValidator, WithJsonSchema, model_validator

from receiver.config.errors import ConfigProblem, key_path
from receiver.fields import FieldError, FrozenModel, Name

UTC = dt.timezone.utc
# Go's numbering, as Alertmanager: the week begins on Sunday.
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
_CLOCK = re.compile(r"^(?:([01][0-9]|2[0-3]):([0-5][0-9])|(24):(00))$")
# mute_end looks this far ahead at most: a mute that lasts longer ends "at the cap", to be looked at again then.
MUTE_END_CAP = dt.timedelta(days=400)


@dataclasses.dataclass(frozen=True, slots=True)
class Span:
    """An inclusive range of weekdays (0 = Sunday), days of month (negative: from the end), months or years."""

    begin: int
    end: int
    text: str

    def __str__(self) -> str:
        return self.text


def _items(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise FieldError(f"expected a string, got {type(value).__name__}", fix='write e.g. "monday:friday"')
    return str(value).strip().lower()


def _member(text: str, names: Sequence[str] | None, what: str, fix: str, first: int = 0) -> int:
    if names is not None and text in names:
        return names.index(text) + first
    if what != "weekday" and re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    close = difflib.get_close_matches(text, names or (), n=1)
    raise FieldError(f'"{text}" is not a {what}', fix=(f'did you mean "{close[0]}"? ' if close else "") + fix)


def _span(value: Any, names: Sequence[str] | None, what: str, fix: str, first: int = 0) -> Span:
    text = _items(value)
    parts = text.split(":")
    if len(parts) > 2:
        raise FieldError(f'"{text}" is not a {what} or a range', fix=fix)
    begin = _member(parts[0].strip(), names, what, fix, first)
    end = _member(parts[-1].strip(), names, what, fix, first)
    return Span(begin, end, text)


def parse_weekdays(value: Any) -> Span:
    fix = 'write a weekday name or a range, e.g. "monday:friday" (the week begins on Sunday)'
    span = _span(value, WEEKDAYS, "weekday", fix)
    if span.begin > span.end:
        raise FieldError(f'"{span.text}": the week begins on Sunday, so {WEEKDAYS[span.begin]} comes after '
                         f"{WEEKDAYS[span.end]}", fix=f'write two items, e.g. ["{WEEKDAYS[span.begin]}", '
                                                     f'"{WEEKDAYS[span.end]}"], as in Alertmanager')
    return span


def parse_days_of_month(value: Any) -> Span:
    fix = 'write days 1 to 31, or -1 (the last day) to -31, or a range, e.g. "1:5" or "-3:-1"'
    span = _span(value, None, "day of the month", fix)
    for day in (span.begin, span.end):
        if day == 0 or not -31 <= day <= 31:
            raise FieldError(f'"{span.text}": {day} is not a day of the month', fix=fix)
    if span.begin < 0 < span.end:
        raise FieldError(f'"{span.text}": a range that starts from the end of the month must end there too',
                         fix='write both ends negative ("-7:-1"), or both positive')
    # As Alertmanager: negative days checked in a 28-day month, so that a range is never empty in every month.
    check_begin, check_end = (d if d > 0 else 28 + d for d in (span.begin, span.end))
    if check_begin > check_end:
        raise FieldError(f'"{span.text}": the range ends before it starts', fix="swap its ends")
    return span


def parse_months(value: Any) -> Span:
    fix = 'write a month name or number 1-12, or a range, e.g. "january:march" or "10:12"'
    span = _span(value, MONTHS, "month", fix, first=1)
    for month in (span.begin, span.end):
        if not 1 <= month <= 12:
            raise FieldError(f'"{span.text}": {month} is not a month', fix=fix)
    if span.begin > span.end:
        raise FieldError(f'"{span.text}": the range ends before it starts',
                         fix='a range stays within a year: write two items, e.g. ["november:december", "january"]')
    return span


def parse_years(value: Any) -> Span:
    fix = 'write a year or a range, e.g. "2026" or "2026:2027"'
    span = _span(value, None, "year", fix)
    if not (1 <= span.begin <= 9999 and 1 <= span.end <= 9999):
        raise FieldError(f'"{span.text}" is not a year between 1 and 9999', fix=fix)
    if span.begin > span.end:
        raise FieldError(f'"{span.text}": the range ends before it starts', fix="swap its ends")
    return span


def _schema(example: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "examples": [example]})


WeekdayRange = Annotated[Span, PlainValidator(parse_weekdays), PlainSerializer(str, return_type=str),
                         _schema("monday:friday")]
DayOfMonthRange = Annotated[Span, PlainValidator(parse_days_of_month), PlainSerializer(str, return_type=str),
                            _schema("-3:-1")]
MonthRange = Annotated[Span, PlainValidator(parse_months), PlainSerializer(str, return_type=str),
                       _schema("january:march")]
YearRange = Annotated[Span, PlainValidator(parse_years), PlainSerializer(str, return_type=str), _schema("2026")]


def parse_clock(value: Any) -> int:
    """"HH:MM" (00:00 to 24:00) → minutes after midnight. An int is YAML 1.1 reading an unquoted 17:00 as the
    sexagesimal number 1020 (Alertmanager's YAML reads it as the string): it means the same minutes."""
    fix = 'write "HH:MM" with two-digit hours, 00:00 to 24:00, e.g. "09:00" (quoted)'
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 24 * 60:
            raise FieldError(f"{value} is not a time of day", fix=fix)
        return value
    if not isinstance(value, str):
        raise FieldError(f"expected a time of day, got {type(value).__name__}", fix=fix)
    found = _CLOCK.match(value.strip())
    if not found:
        raise FieldError(f'"{value}" is not a time of day', fix=fix)
    hours, minutes = (found.group(1), found.group(2)) if found.group(1) else (found.group(3), found.group(4))
    return int(hours) * 60 + int(minutes)


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


Clock = Annotated[int, PlainValidator(parse_clock), PlainSerializer(format_clock, return_type=str),
                  _schema("09:00")]


class TimeRange(FrozenModel):
    """Minutes of the day from start_time (inclusive) to end_time (exclusive)."""

    start_time: Clock
    end_time: Clock

    @model_validator(mode="after")
    def _order(self) -> "TimeRange":
        if self.start_time >= self.end_time:
            raise FieldError(f"start_time {format_clock(self.start_time)} is not before end_time "
                             f"{format_clock(self.end_time)}",
                             fix='a range stays within a day: split one across midnight in two, e.g. '
                                 '"22:00"-"24:00" and "00:00"-"06:00"')
        return self


def check_location(value: Any) -> str:
    if not isinstance(value, str):
        raise FieldError(f"expected a time zone name, got {type(value).__name__}", fix='write e.g. "Europe/Berlin"')
    if value == "Local":
        raise FieldError('location "Local" (the machine\'s zone) is not supported',
                         fix='name the zone, e.g. "Europe/Berlin": replicas may run in different zones')
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise FieldError(f"unknown time zone {value!r}",
                         fix='use an IANA name such as "Europe/Berlin" or "UTC"') from None
    return value


Location = Annotated[str, PlainValidator(check_location), _schema("Europe/Berlin")]


class IntervalEntry(FrozenModel):
    """One entry of a named interval: matches when every field it gives matches (a field left out matches all)."""

    times: tuple[TimeRange, ...] | None = None
    weekdays: tuple[WeekdayRange, ...] | None = None
    days_of_month: tuple[DayOfMonthRange, ...] | None = None
    months: tuple[MonthRange, ...] | None = None
    years: tuple[YearRange, ...] | None = None
    location: Location = "UTC"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.location)  # ZoneInfo caches its instances

    def contains(self, at: dt.datetime) -> bool:
        return self.contains_local(at.astimezone(self.zone))

    def contains_local(self, t: dt.datetime) -> bool:
        """Alertmanager's ContainsTime, with `t` already in this entry's zone."""
        if self.times:
            minute = t.hour * 60 + t.minute
            if not any(r.start_time <= minute < r.end_time for r in self.times):
                return False
        if self.days_of_month:
            days = calendar.monthrange(t.year, t.month)[1]
            if not any(_day_in(span, t.day, days) for span in self.days_of_month):
                return False
        if self.months and not any(s.begin <= t.month <= s.end for s in self.months):
            return False
        if self.weekdays:
            weekday = (t.weekday() + 1) % 7  # Python: Monday = 0; Go: Sunday = 0
            if not any(s.begin <= weekday <= s.end for s in self.weekdays):
                return False
        if self.years and not any(s.begin <= t.year <= s.end for s in self.years):
            return False
        return True

    def boundaries(self) -> set[int]:
        """The minutes of the day at which this entry can start or stop matching (besides midnight)."""
        return {m for r in (self.times or ()) for m in (r.start_time, r.end_time) if m < 24 * 60}


def _day_in(span: Span, day: int, days: int) -> bool:
    # Exactly Alertmanager's arithmetic, clamping included.
    begin = days + span.begin + 1 if span.begin < 0 else span.begin
    end = days + span.end + 1 if span.end < 0 else span.end
    if begin > days:
        return False
    begin, end = max(-days, min(begin, days)), max(-days, min(end, days))
    return begin <= day <= end


TimeInterval = tuple[IntervalEntry, ...]


def _from_alertmanager_list(value: Any) -> Any:
    """Alertmanager's form, a list of {name, time_intervals}, as our mapping of name → entries."""
    if not isinstance(value, list):
        return value
    out: dict[Any, Any] = {}
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"name", "time_intervals"}:
            raise FieldError(f"item {i} is not {{name: ..., time_intervals: [...]}}",
                             fix="write a mapping of name to entries: `offhours: [{weekdays: [saturday, sunday]}]`")
        if item["name"] in out:
            raise FieldError(f'time interval "{item["name"]}" is defined twice', fix="rename one")
        out[item["name"]] = item["time_intervals"]
    return out


TimeIntervals = Annotated[dict[Name, TimeInterval], BeforeValidator(_from_alertmanager_list)]


# --- evaluation ---------------------------------------------------------------------------------------------


def matches(interval: Sequence[IntervalEntry], at: dt.datetime) -> bool:
    """Whether the instant `at` (aware) is in the interval: in any of its entries."""
    return any(entry.contains(at) for entry in interval)


def mute_reason(route: Any, intervals: Mapping[str, Sequence[IntervalEntry]], at: dt.datetime) -> str | None:
    """Why `route` (anything with mute_time_intervals and active_time_intervals) is muted at `at`: the name of
    the mute interval it is in, or "outside active_time_intervals"; None when it is not muted."""
    for name in route.mute_time_intervals:
        if matches(intervals.get(name, ()), at):
            return name
    active = route.active_time_intervals
    if active and not any(matches(intervals.get(name, ()), at) for name in active):
        return "outside active_time_intervals"
    return None


def is_muted(route: Any, intervals: Mapping[str, Sequence[IntervalEntry]], at: dt.datetime) -> bool:
    return mute_reason(route, intervals, at) is not None


def mute_end(route: Any, intervals: Mapping[str, Sequence[IntervalEntry]], at: dt.datetime, *,
             cap: dt.timedelta = MUTE_END_CAP) -> dt.datetime | None:
    """The first instant after `at` at which `route` is no longer muted; None when it is not muted at `at`; at most
    `at + cap` (a mute that lasts longer is looked at again then).

    Being in an entry depends only on the wall clock of its zone at minute precision, so the answer changes only
    where some zone's clock crosses midnight or a time range's start or end, or jumps (DST): those instants are
    the only ones evaluated, day by day, in order."""
    if not is_muted(route, intervals, at):
        return None
    limit = at + cap
    entries = [e for name in (*route.mute_time_intervals, *route.active_time_intervals)
               for e in intervals.get(name, ())]
    minutes: dict[str, set[int]] = {}
    for entry in entries:
        minutes.setdefault(entry.location, {0}).update(entry.boundaries())
    if not minutes:  # names only empty intervals: muted for good (active intervals that never match)
        return limit
    for candidate in _candidates(minutes, at):
        if candidate > limit:
            return limit
        if not is_muted(route, intervals, candidate):
            return candidate
    return limit  # pragma: no cover - _candidates never ends


def _candidates(minutes: Mapping[str, set[int]], at: dt.datetime) -> Iterator[dt.datetime]:
    """Every instant after `at` where some zone's clock reaches one of its boundary minutes or jumps, in order.

    Day k of each zone is generated before any candidate is yielded that could come after the earliest start of
    day k+1 among the zones: candidates of later days are never earlier than that, so the order is exact."""
    zones = {name: (zoneinfo.ZoneInfo(name), sorted(m)) for name, m in minutes.items()}
    first_day = {name: at.astimezone(zone).date() for name, (zone, _) in zones.items()}
    pending: list[dt.datetime] = []
    seen: set[dt.datetime] = set()
    day = 0
    while True:
        for name, (zone, mins) in zones.items():
            date = first_day[name] + dt.timedelta(days=day)
            for instant in _day_instants(zone, date, mins):
                if instant > at and instant not in seen:
                    seen.add(instant)
                    heapq.heappush(pending, instant)
        horizon = min(_earliest(zone, dt.datetime.combine(first_day[name] + dt.timedelta(days=day + 1), dt.time()))
                      for name, (zone, _) in zones.items())
        while pending and pending[0] < horizon:
            yield heapq.heappop(pending)
        day += 1


def _day_instants(zone: zoneinfo.ZoneInfo, date: dt.date, mins: Sequence[int]) -> Iterator[dt.datetime]:
    for m in mins:
        local = dt.datetime.combine(date, dt.time(m // 60, m % 60))
        yield _earliest(zone, local)
        # A wall-clock time the clocks go back over happens twice: the second time can start a match again.
        second = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
        if _local(second, zone) == local:
            yield second
    start = _earliest(zone, dt.datetime.combine(date, dt.time()))
    end = _earliest(zone, dt.datetime.combine(date + dt.timedelta(days=1), dt.time()))
    if start.astimezone(zone).utcoffset() != (end - dt.timedelta(seconds=1)).astimezone(zone).utcoffset():
        yield _transition(zone, start, end)  # the clock jumps (DST): what it jumps over or back to may matter


def _local(instant: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def _earliest(zone: zoneinfo.ZoneInfo, local: dt.datetime) -> dt.datetime:
    """The first instant (UTC) at which the zone's wall clock reads `local` or later."""
    a = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    b = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo, hi = min(a, b), max(a, b)
    if _local(lo, zone) == local:
        return lo
    # `local` falls into a gap (the clocks jump forward over it): the answer is the jump, between lo and hi.
    while hi - lo > dt.timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if _local(mid, zone) >= local:
            hi = mid
        else:
            lo = mid
    return hi


def _transition(zone: zoneinfo.ZoneInfo, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    """The instant in [start, end) at which the zone's offset changes (one per day at most, as in tzdata)."""
    before = start.astimezone(zone).utcoffset()
    lo, hi = start, end
    while hi - lo > dt.timedelta(seconds=1):
        mid = (lo + (hi - lo) / 2).replace(microsecond=0)
        if mid.astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi


# --- cross-checks -------------------------------------------------------------------------------------------


def check_route_intervals(config: Any) -> list[ConfigProblem]:
    """Every interval a route names must be defined under time_intervals."""
    problems = []
    defined = sorted(config.time_intervals)
    for i, route in enumerate(config.routes):
        for key in ("mute_time_intervals", "active_time_intervals"):
            for name in getattr(route, key) or ():
                if name in config.time_intervals:
                    continue
                close = difflib.get_close_matches(name, defined, n=1)
                hint = f'did you mean "{close[0]}"? or ' if close else ""
                problems.append(ConfigProblem(
                    key_path(("routes", i, key)), f'undefined time interval "{name}"',
                    f"{hint}define it under time_intervals:" + (f" (defined: {', '.join(defined)})" if defined else "")))
    return problems
