"""time_intervals: Alertmanager's syntax and semantics, config errors, and mute_end against a minute-by-minute
brute force over random intervals (DST days included)."""

from __future__ import annotations

import datetime as dt
import textwrap
import zoneinfo
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.config import Config, ConfigError, load_config
from receiver.config.time_intervals import IntervalEntry, is_muted, matches, mute_end, mute_reason

UTC = dt.timezone.utc
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def berlin(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN)


def interval(*entries: dict) -> tuple[IntervalEntry, ...]:
    return tuple(IntervalEntry.model_validate(e) for e in entries)


@dataclass(frozen=True)
class Route:
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()


def load(tmp_path, text: str) -> Config:
    path = tmp_path / "receiver.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_config(path, env={})


def error_of(tmp_path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return str(info.value)


# --- the config file ------------------------------------------------------------------------------------------


def test_config_with_intervals_and_routes(tmp_path):
    config = load(tmp_path, """
        time_intervals:
          nights:
            - times: [{start_time: "22:00", end_time: "24:00"}, {start_time: 00:00, end_time: 06:00}]
              weekdays: ["Monday:Friday"]
              location: Europe/Berlin
          weekends:
            - weekdays: [saturday, sunday]
        routes:
          - matchers: ['team="db"']
            mute_time_intervals: [nights, weekends]
          - matchers: ['team="web"']
            mute_time_intervals: []
          - matchers: ['team="ops"']
            active_time_intervals: [nights]
          - levels: {L1: [log]}
            mute_time_intervals: [weekends]
    """)
    db, web, ops, default = config.resolved_routes()
    assert db.mute_time_intervals == ("nights", "weekends") and db.active_time_intervals == ()
    assert web.mute_time_intervals == ()  # [] names none: the default route's do not apply
    assert ops.mute_time_intervals == ("weekends",) and ops.active_time_intervals == ("nights",)
    assert default.mute_time_intervals == ("weekends",)
    nights = config.time_intervals["nights"]
    # An unquoted 06:00 is YAML 1.1's sexagesimal 360: the same minutes as "06:00".
    assert [(r.start_time, r.end_time) for r in nights[0].times] == [(22 * 60, 24 * 60), (0, 6 * 60)]
    assert [(s.begin, s.end) for s in nights[0].weekdays] == [(1, 5)]


def test_alertmanager_list_form_is_accepted(tmp_path):
    config = load(tmp_path, """
        time_intervals:
          - name: offhours
            time_intervals:
              - times: [{start_time: "17:00", end_time: "24:00"}]
        routes:
          - {levels: {L1: [log]}, mute_time_intervals: [offhours]}
    """)
    assert matches(config.time_intervals["offhours"], utc(2026, 3, 2, 17, 0))


@pytest.mark.parametrize("entry, key, message, fix", [
    ('{weekdays: ["saturday:sunday"]}', "time_intervals.x[0].weekdays[0]", "the week begins on Sunday",
     '["saturday", "sunday"]'),
    ('{weekdays: [mondy]}', "time_intervals.x[0].weekdays[0]", '"mondy" is not a weekday', 'did you mean "monday"'),
    ('{days_of_month: ["0"]}', "time_intervals.x[0].days_of_month[0]", "0 is not a day of the month", "-1 (the last"),
    ('{days_of_month: ["-3:5"]}', "time_intervals.x[0].days_of_month[0]", "must end there too", "both ends negative"),
    ('{days_of_month: ["10:2"]}', "time_intervals.x[0].days_of_month[0]", "ends before it starts", "swap"),
    ('{months: ["march:january"]}', "time_intervals.x[0].months[0]", "ends before it starts", "within a year"),
    ('{months: ["13"]}', "time_intervals.x[0].months[0]", "13 is not a month", "1-12"),
    ('{years: ["2027:2026"]}', "time_intervals.x[0].years[0]", "ends before it starts", "swap"),
    ('{times: [{start_time: "9:00", end_time: "17:00"}]}', "time_intervals.x[0].times[0].start_time",
     '"9:00" is not a time of day', "two-digit hours"),
    ('{times: [{start_time: "22:00", end_time: "06:00"}]}', "time_intervals.x[0].times[0]",
     "start_time 22:00 is not before end_time 06:00", "split one across midnight"),
    ('{times: [{start_time: "10:00"}]}', "time_intervals.x[0].times[0].end_time", 'missing required key "end_time"',
     "add end_time"),
    ('{location: Mars/Olympus}', "time_intervals.x[0].location", "unknown time zone 'Mars/Olympus'", "IANA"),
    ('{location: Local}', "time_intervals.x[0].location", '"Local"', "name the zone"),
    ('{weekday: [monday]}', "time_intervals.x[0].weekday", 'unknown key "weekday"', "weekdays"),
])
def test_bad_entries_name_interval_key_and_fix(tmp_path, entry, key, message, fix):
    text = error_of(tmp_path, f"""
        time_intervals:
          x: [{entry}]
    """)
    assert f"{key}: " in text and message in text and fix in text, text


def test_routes_must_name_defined_intervals(tmp_path):
    text = error_of(tmp_path, """
        time_intervals:
          nights: [{times: [{start_time: "00:00", end_time: "06:00"}]}]
        routes:
          - matchers: ['team="db"']
            mute_time_intervals: [nigths]
          - levels: {L1: [log]}
            active_time_intervals: [business-hours]
    """)
    assert 'routes[0].mute_time_intervals: undefined time interval "nigths"' in text
    assert 'did you mean "nights"?' in text
    assert 'routes[1].active_time_intervals: undefined time interval "business-hours"' in text


# --- semantics (Alertmanager's ContainsTime) ------------------------------------------------------------------


def test_times_include_start_exclude_end_and_24_00():
    day = interval({"times": [{"start_time": "09:00", "end_time": "17:00"}]})
    assert not matches(day, utc(2026, 5, 4, 8, 59, 59))
    assert matches(day, utc(2026, 5, 4, 9, 0)) and matches(day, utc(2026, 5, 4, 16, 59, 59))
    assert not matches(day, utc(2026, 5, 4, 17, 0))
    late = interval({"times": [{"start_time": "23:00", "end_time": "24:00"}]})
    assert matches(late, utc(2026, 5, 4, 23, 59, 59)) and not matches(late, utc(2026, 5, 5, 0, 0))


def test_weekdays_months_years_are_inclusive_ranges():
    workdays = interval({"weekdays": ["monday:friday"]})
    assert matches(workdays, utc(2026, 5, 4)) and matches(workdays, utc(2026, 5, 8, 23, 59))  # Monday, Friday
    assert not matches(workdays, utc(2026, 5, 9)) and not matches(workdays, utc(2026, 5, 10))
    sunday = interval({"weekdays": ["sunday"]})
    assert matches(sunday, utc(2026, 5, 10)) and not matches(sunday, utc(2026, 5, 11))
    quarter = interval({"months": ["january:march", "12"]})
    assert matches(quarter, utc(2026, 3, 31, 23)) and matches(quarter, utc(2026, 12, 1))
    assert not matches(quarter, utc(2026, 4, 1))
    years = interval({"years": ["2026:2027"]})
    assert matches(years, utc(2027, 12, 31, 23, 59)) and not matches(years, utc(2028, 1, 1))


def test_negative_days_of_month_count_from_the_end():
    last3 = interval({"days_of_month": ["-3:-1"]})
    assert [d for d in range(1, 29) if matches(last3, utc(2026, 2, d))] == [26, 27, 28]
    assert [d for d in range(1, 30) if matches(last3, utc(2028, 2, d))] == [27, 28, 29]  # leap year
    assert [d for d in range(1, 31) if matches(last3, utc(2026, 4, d))] == [28, 29, 30]
    first5 = interval({"days_of_month": ["1:5"]})
    assert [d for d in range(1, 31) if matches(first5, utc(2026, 4, d))] == [1, 2, 3, 4, 5]
    # A day the month does not have never matches; a range past the month's end is cut at it (Alertmanager).
    assert not any(matches(interval({"days_of_month": ["30"]}), utc(2026, 2, d)) for d in range(1, 29))
    assert [d for d in range(1, 29) if matches(interval({"days_of_month": ["27:31"]}), utc(2026, 2, d))] == [27, 28]


def test_any_entry_and_all_fields():
    both = interval({"weekdays": ["saturday"], "times": [{"start_time": "10:00", "end_time": "12:00"}]},
                    {"days_of_month": ["1"]})
    assert matches(both, utc(2026, 5, 9, 10, 30))  # Saturday, in the hours: the first entry
    assert not matches(both, utc(2026, 5, 9, 12, 30))  # Saturday, not in the hours, not the 1st
    assert not matches(both, utc(2026, 5, 8, 10, 30))  # Friday
    assert matches(both, utc(2026, 5, 1, 23))  # the 1st: the second entry
    assert matches(interval({}), utc(2026, 5, 1)) and not matches((), utc(2026, 5, 1))


def test_location_is_the_wall_clock_of_the_zone_across_dst():
    office = interval({"times": [{"start_time": "09:00", "end_time": "17:00"}], "location": "Europe/Berlin"})
    assert matches(office, utc(2026, 1, 5, 8, 0)) and not matches(office, utc(2026, 1, 5, 7, 59))  # CET
    assert matches(office, utc(2026, 7, 6, 7, 0)) and not matches(office, utc(2026, 7, 6, 6, 59))  # CEST
    # The weekday is the zone's too: Monday 00:30 in Berlin is Sunday 23:30 UTC.
    monday = interval({"weekdays": ["monday"], "location": "Europe/Berlin"})
    assert matches(monday, utc(2026, 1, 4, 23, 30)) and not matches(interval({"weekdays": ["monday"]}),
                                                                     utc(2026, 1, 4, 23, 30))


def test_mute_reason_and_active_intervals():
    intervals = {"nights": interval({"times": [{"start_time": "00:00", "end_time": "06:00"}]}),
                 "office": interval({"times": [{"start_time": "09:00", "end_time": "17:00"}]})}
    assert mute_reason(Route(("nights",)), intervals, utc(2026, 5, 4, 5)) == "nights"
    assert mute_reason(Route(("nights",)), intervals, utc(2026, 5, 4, 7)) is None
    office_only = Route(active_time_intervals=("office",))
    assert mute_reason(office_only, intervals, utc(2026, 5, 4, 8)) == "outside active_time_intervals"
    assert mute_reason(office_only, intervals, utc(2026, 5, 4, 10)) is None
    assert mute_end(office_only, intervals, utc(2026, 5, 4, 17, 0)) == utc(2026, 5, 5, 9, 0)
    assert mute_end(office_only, intervals, utc(2026, 5, 4, 10)) is None


# --- mute_end -------------------------------------------------------------------------------------------------


def test_mute_end_across_midnight_and_weekend():
    intervals = {"nights": interval({"times": [{"start_time": "22:00", "end_time": "24:00"}]},
                                    {"times": [{"start_time": "00:00", "end_time": "06:00"}]}),
                 "weekend": interval({"weekdays": ["saturday", "sunday"], "location": "Europe/Berlin"})}
    route = Route(("nights", "weekend"))
    assert mute_end(route, intervals, utc(2026, 5, 4, 23, 0, 30)) == utc(2026, 5, 5, 6)  # Monday night
    # Friday 23:00 UTC: nights, then the Berlin weekend (Sat 00:00 CEST = Fri 22:00 UTC .. Mon 00:00 CEST), then
    # nights again until Monday 06:00 UTC.
    assert mute_end(route, intervals, utc(2026, 5, 8, 23)) == utc(2026, 5, 11, 6)


def test_mute_end_is_capped():
    intervals = {"always": interval({})}
    at = utc(2026, 5, 4, 12)
    assert mute_end(Route(("always",)), intervals, at) == at + dt.timedelta(days=400)
    assert mute_end(Route(("always",)), intervals, at, cap=dt.timedelta(days=2)) == at + dt.timedelta(days=2)
    assert mute_end(Route(active_time_intervals=("never",)), {"never": ()}, at) == at + dt.timedelta(days=400)


def test_mute_end_on_the_day_clocks_go_forward():
    # 2026-03-29 in Berlin: 02:00 CET becomes 03:00 CEST at 01:00 UTC; 02:00-02:59 never happen.
    intervals = {"early": interval({"times": [{"start_time": "00:00", "end_time": "02:30"}],
                                    "location": "Europe/Berlin"})}
    assert mute_end(Route(("early",)), intervals, utc(2026, 3, 29, 0, 30)) == utc(2026, 3, 29, 1, 0)
    # A range wholly inside the gap never matches that day.
    gap = {"gap": interval({"times": [{"start_time": "02:00", "end_time": "03:00"}], "location": "Europe/Berlin"})}
    assert not any(is_muted(Route(("gap",)), gap, utc(2026, 3, 29, 0) + dt.timedelta(minutes=m)) for m in range(180))
    # Active only 02:15-03:30 local: on that day that is 03:00-03:30 CEST, from the jump on.
    active = {"a": interval({"times": [{"start_time": "02:15", "end_time": "03:30"}], "location": "Europe/Berlin"})}
    assert mute_end(Route(active_time_intervals=("a",)), active, utc(2026, 3, 29, 0, 10)) == utc(2026, 3, 29, 1, 0)


def test_mute_end_on_the_day_clocks_go_back():
    # 2026-10-25 in Berlin: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:00-02:59 happen twice.
    twice = {"t": interval({"times": [{"start_time": "02:00", "end_time": "03:00"}], "location": "Europe/Berlin"})}
    route = Route(("t",))
    assert mute_end(route, twice, utc(2026, 10, 25, 0, 10)) == utc(2026, 10, 25, 2, 0)  # two hours, not one
    # Active 01:00-02:30 local: from 02:30 CEST (00:30 UTC) muted, until the clock falls back to 02:00 CET —
    # an instant at which no range starts, found only because the jump itself is looked at.
    active = {"a": interval({"times": [{"start_time": "01:00", "end_time": "02:30"}], "location": "Europe/Berlin"})}
    assert mute_end(Route(active_time_intervals=("a",)), active, utc(2026, 10, 25, 0, 40)) == utc(2026, 10, 25, 1)
    # Muted 01:00-02:30 local: during the second 02:00-02:30 (CET) the mute ends at the second 02:30.
    mute = Route(("a",))
    assert mute_end(mute, active, utc(2026, 10, 24, 23, 10)) == utc(2026, 10, 25, 0, 30)  # the first 02:30
    assert mute_end(mute, active, utc(2026, 10, 25, 1, 10)) == utc(2026, 10, 25, 1, 30)  # the second


# --- mute_end against a brute force -----------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago",
         "America/St_Johns"]
# Days on which some of these zones change their clocks, and a few ordinary ones.
DAYS = [dt.date(2026, 3, 8), dt.date(2026, 3, 29), dt.date(2026, 4, 5), dt.date(2026, 4, 4), dt.date(2026, 9, 6),
        dt.date(2026, 10, 4), dt.date(2026, 10, 25), dt.date(2026, 11, 1), dt.date(2026, 2, 28), dt.date(2026, 12, 31),
        dt.date(2027, 1, 31), dt.date(2028, 2, 29)]
WEEKDAY_NAMES = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]


@st.composite
def time_ranges(draw, focus: tuple[int, int] | None = None):
    if focus is not None and draw(st.booleans()):  # around the wall-clock times just before and at a change
        ends = sorted(max(0, min(24 * 60, m + draw(st.sampled_from([0, 0, -15, 15, -30, 30]))))
                      for m in (draw(st.sampled_from(focus)), draw(st.sampled_from(focus))))
        start, end = (ends[0], ends[1]) if ends[0] < ends[1] else (ends[0], min(24 * 60, ends[0] + 30))
        start = min(start, 24 * 60 - 1)
        return {"start_time": f"{start // 60:02d}:{start % 60:02d}", "end_time": f"{end // 60:02d}:{end % 60:02d}"}
    start = draw(st.integers(0, 47)) * 30 + draw(st.sampled_from([0, 0, 15, 1]))
    end = draw(st.integers(start + 1, 24 * 60))
    return {"start_time": f"{start // 60:02d}:{start % 60:02d}", "end_time": f"{end // 60:02d}:{end % 60:02d}"}


@st.composite
def weekday_ranges(draw):
    a = draw(st.integers(0, 6))
    b = draw(st.integers(a, 6))
    return WEEKDAY_NAMES[a] if a == b else f"{WEEKDAY_NAMES[a]}:{WEEKDAY_NAMES[b]}"


@st.composite
def day_ranges(draw):
    if draw(st.booleans()):
        a = draw(st.integers(1, 31))
        return f"{a}:{draw(st.integers(a, 31))}"
    a = draw(st.integers(-28, -1))
    return f"{a}:{draw(st.integers(a, -1))}"


def _transitions(zone_name: str) -> list[dt.datetime]:
    zone, out = zoneinfo.ZoneInfo(zone_name), []
    t = utc(2026, 1, 1)
    while t.year < 2027:
        if t.astimezone(zone).utcoffset() != (t + dt.timedelta(hours=1)).astimezone(zone).utcoffset():
            exact = t
            while exact.astimezone(zone).utcoffset() == t.astimezone(zone).utcoffset():
                exact += dt.timedelta(minutes=1)
            out.append(exact)
        t += dt.timedelta(hours=1)
    return out


TRANSITIONS = {name: _transitions(name) for name in ZONES}


@st.composite
def entries(draw, zone: str, focus: tuple[int, int] | None):
    entry: dict = {"location": zone if draw(st.integers(0, 4)) else draw(st.sampled_from(ZONES))}
    if draw(st.integers(0, 5)):
        entry["times"] = draw(st.lists(time_ranges(focus if entry["location"] == zone else None), min_size=1,
                                       max_size=3))
    if draw(st.integers(0, 2)) == 0:
        entry["weekdays"] = draw(st.lists(weekday_ranges(), min_size=1, max_size=2))
    if draw(st.integers(0, 5)) == 0:
        entry["days_of_month"] = draw(st.lists(day_ranges(), min_size=1, max_size=2))
    if draw(st.integers(0, 7)) == 0:
        a = draw(st.integers(1, 12))
        entry["months"] = [f"{a}:{draw(st.integers(a, 12))}"]
    if len(entry) == 1:  # an entry of nothing but a location always matches: rarely worth a case
        entry["times"] = [draw(time_ranges(focus))]
    return entry


@st.composite
def cases(draw, around_clock_changes: bool = False):
    names = ["a", "b", "c"]
    zone = draw(st.sampled_from([z for z in ZONES if TRANSITIONS[z]] if around_clock_changes else ZONES))
    change = None
    if TRANSITIONS[zone] and (around_clock_changes or draw(st.booleans())):
        change = draw(st.sampled_from(TRANSITIONS[zone]))
    focus = None
    if change is not None:
        before = (change - dt.timedelta(seconds=1)).astimezone(zoneinfo.ZoneInfo(zone))
        after = change.astimezone(zoneinfo.ZoneInfo(zone))
        focus = (before.hour * 60 + before.minute + 1, after.hour * 60 + after.minute)
    intervals = {n: interval(*draw(st.lists(entries(zone, focus), min_size=1, max_size=2))) for n in names}
    mode = draw(st.sampled_from(["mute", "mute", "active", "both"]))
    some = st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True)
    mute = tuple(draw(some)) if mode != "active" else ()
    active = tuple(draw(some)) if mode != "mute" else ()
    if change is not None:  # around one of the zone's clock changes
        at = change + dt.timedelta(seconds=draw(st.integers(-2 * 3600, 2 * 3600)))
    else:
        day = draw(st.sampled_from(DAYS))
        at = dt.datetime.combine(day, dt.time(), UTC) + dt.timedelta(seconds=draw(st.integers(-86_400, 2 * 86_400)))
    return Route(mute, active), intervals, at


def brute_force_end(route, intervals, at, horizon: dt.timedelta) -> dt.datetime | None:
    """The first whole minute after `at` that is not muted, looking at every minute up to the horizon."""
    t = at.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    while t <= at + horizon:
        if not is_muted(route, intervals, t):
            return t
        t += dt.timedelta(minutes=1)
    return None


def check_against_brute_force(route, intervals, at, horizon: dt.timedelta) -> None:
    end = mute_end(route, intervals, at)
    if not is_muted(route, intervals, at):
        assert end is None
        return
    expected = brute_force_end(route, intervals, at, horizon)
    if expected is None:
        assert end > at + horizon
    else:
        assert end == expected


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_mute_end_agrees_with_a_minute_by_minute_brute_force(case):
    check_against_brute_force(*case, horizon=dt.timedelta(days=2))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(around_clock_changes=True))
def test_mute_end_agrees_with_the_brute_force_around_clock_changes(case):
    # Time ranges near the local time at which the clocks change, `at` within hours of the change: the cases where
    # a wall-clock time happens twice or never.
    check_against_brute_force(*case, horizon=dt.timedelta(hours=12))
