"""Who is on call (engine/oncall.py), on an injected instant: a weekly rotation with a Monday 09:00 Europe/Berlin
handoff on both sides of the handoff and across the March and October DST changes, a daytime layer that wins on
weekdays, hourly shifts that count elapsed time, and the config errors that name the fix."""

from __future__ import annotations

import datetime as dt

import pytest

from receiver.config import Config, ConfigError
from receiver.engine.oncall import UnknownSchedule, on_call, on_call_everywhere

UTC = dt.timezone.utc
WEEKLY = {"participants": ["alice", "bob"], "length": "1w", "handoff": "mon 09:00", "start": "2026-01-05"}
DAYTIME = {"participants": ["carol"], "hours": "mon-fri 09:00-17:00"}


def config(**schedules) -> Config:
    return Config.model_validate({"people": {"alice": {"email": "alice@example.org"}, "bob": {}, "carol": {}},
                                  "schedules": schedules})


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


WEEKLY_BERLIN = config(**{"primary-db": {"timezone": "Europe/Berlin", "rotations": [WEEKLY]}})


@pytest.mark.parametrize("instant, person, until", [
    # the first shift: Monday 2026-01-05 09:00 CET = 08:00Z
    ("2026-01-05T07:59:59", None, "2026-01-05T08:00:00"),
    ("2026-01-05T08:00:00", "alice", "2026-01-12T08:00:00"),
    ("2026-01-12T07:59:59", "alice", "2026-01-12T08:00:00"),
    ("2026-01-12T08:00:00", "bob", "2026-01-19T08:00:00"),
    # March: clocks go forward on Sunday the 29th; the handoff stays at 09:00 local, now 07:00Z (a 167-hour shift)
    ("2026-03-23T08:00:00", "bob", "2026-03-30T07:00:00"),
    ("2026-03-30T06:59:59", "bob", "2026-03-30T07:00:00"),
    ("2026-03-30T07:00:00", "alice", "2026-04-06T07:00:00"),
    ("2026-03-30T07:59:59", "alice", "2026-04-06T07:00:00"),  # 168 h after the last handoff would still be bob's
    # October: clocks go back on Sunday the 25th; 09:00 local is 08:00Z again (a 169-hour shift)
    ("2026-10-19T07:00:00", "bob", "2026-10-26T08:00:00"),
    ("2026-10-26T07:00:00", "bob", "2026-10-26T08:00:00"),  # 168 h later, still bob's
    ("2026-10-26T08:00:00", "alice", "2026-11-02T08:00:00"),
])
def test_a_weekly_rotation_hands_off_at_monday_0900_berlin_across_dst(instant, person, until):
    answer = on_call(WEEKLY_BERLIN, "primary-db", at(instant))
    assert (answer.person, answer.until) == (person, at(until))
    assert answer.source == ("rotation" if person else None)


LAYERED = config(**{"primary-db": {"timezone": "Europe/Berlin", "rotations": [DAYTIME, WEEKLY]}})


@pytest.mark.parametrize("instant, person, until", [
    ("2026-03-25T07:59:59", "bob", "2026-03-25T08:00:00"),   # Wednesday 08:59 CET: the week's person, until carol
    ("2026-03-25T08:00:00", "carol", "2026-03-25T16:00:00"),  # 09:00-17:00 CET on a weekday: the daytime layer
    ("2026-03-25T16:00:00", "bob", "2026-03-26T08:00:00"),   # after hours: back to the week, until 09:00 tomorrow
    ("2026-03-27T16:30:00", "bob", "2026-03-30T07:00:00"),   # Friday evening: the weekend is the week's
    ("2026-03-28T12:00:00", "bob", "2026-03-30T07:00:00"),   # Saturday noon: carol's layer is off
    ("2026-03-30T07:00:00", "carol", "2026-03-30T15:00:00"),  # Monday 09:00 CEST: both change; the layer wins
    ("2026-03-30T15:00:00", "alice", "2026-03-31T07:00:00"),
])
def test_a_daytime_layer_listed_first_wins_on_weekdays(instant, person, until):
    answer = on_call(LAYERED, "primary-db", at(instant))
    assert (answer.person, answer.until) == (person, at(until))


def test_hourly_shifts_count_elapsed_hours_across_dst():
    c = config(ops={"timezone": "Europe/Berlin", "rotations": [
        {"participants": ["alice", "bob"], "length": "12h", "handoff": "20:00", "start": "2026-03-28"}]})
    # 2026-03-28 20:00 CET = 19:00Z; 12 elapsed hours later is 07:00Z, which is 09:00 CEST after the change
    assert on_call(c, "ops", at("2026-03-29T06:59:00")).as_dict() == {
        "schedule": "ops", "at": "2026-03-29T06:59:00Z", "person": "alice", "until": "2026-03-29T07:00:00Z",
        "source": "rotation"}
    assert on_call(c, "ops", at("2026-03-29T07:00:00")).person == "bob"


def test_a_handoff_at_a_time_dst_skips_moves_forward_by_the_gap():
    c = config(ops={"timezone": "Europe/Berlin", "rotations": [
        {"participants": ["alice", "bob"], "length": "1d", "handoff": "02:30", "start": "2026-03-27"}]})
    # 02:30 on 2026-03-29 does not exist in Berlin: the handoff is at 03:30 CEST = 01:30Z
    assert on_call(c, "ops", at("2026-03-29T01:29:00")).until == at("2026-03-29T01:30:00")
    assert on_call(c, "ops", at("2026-03-29T01:30:00")).person == "alice"  # the third day: alice again
    assert on_call(c, "ops", at("2026-03-29T01:30:00")).until == at("2026-03-30T00:30:00")  # 02:30 CEST


def test_every_schedule_is_answered_by_name_and_an_unknown_one_is_an_error():
    c = config(b={"rotations": [{"participants": ["carol"]}]}, a={"timezone": "Europe/Berlin", "rotations": [WEEKLY]})
    answers = on_call_everywhere(c, at("2026-01-06T12:00:00"))
    assert [(a.schedule, a.person, a.until) for a in answers] == [("a", "alice", at("2026-01-12T08:00:00")),
                                                                  ("b", "carol", None)]
    with pytest.raises(UnknownSchedule):
        on_call(c, "c", at("2026-01-06T12:00:00"))


@pytest.mark.parametrize("rotation, says", [
    ({"participants": ["dave"]}, '"dave" is not one of the people'),
    ({**WEEKLY, "start": "2026-01-06"}, "start 2026-01-06 is a tue, the handoff is on mon"),
    ({**WEEKLY, "handoff": "monday 9am"}, "is not a handoff"),
    ({**WEEKLY, "length": "1 week"}, "is not a shift length"),
    ({"participants": ["alice", "bob"]}, "several participants take turns only with a shift length"),
    ({"participants": ["alice"], "length": "1w"}, "needs the day it starts"),
    ({"participants": ["carol"], "hours": "mon-fri 17:00-09:00"}, "ends before it starts"),
    ({"participants": ["carol"], "hours": "weekdays 09:00-17:00"}, "is not a list of weekdays"),
])
def test_bad_rotations_are_config_errors_that_say_what_is_wrong(rotation, says):
    with pytest.raises((ConfigError, ValueError)) as caught:
        config(s={"timezone": "Europe/Berlin", "rotations": [rotation]})
    assert says in str(caught.value)


def test_an_unknown_time_zone_is_an_error():
    with pytest.raises((ConfigError, ValueError)) as caught:
        config(s={"timezone": "Mars/Olympus", "rotations": [{"participants": ["carol"]}]})
    assert "unknown time zone 'Mars/Olympus'" in str(caught.value)
