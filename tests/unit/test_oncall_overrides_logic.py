"""Overrides in the on-call computation (engine/oncall._with_overrides, on_call, shifts), pure and on fixed instants:
an override holds from its start (inclusive) to its end (exclusive) and wins over every rotation; the latest made
(highest id) wins where two overlap; a rotation's answer holds only until the next override begins; overrides of
other schedules and ended ones change nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from receiver.config import Config
from receiver.domain import Override
from receiver.engine.oncall import OVERRIDE, ROTATION, OnCall, _with_overrides, on_call, shifts

UTC = dt.timezone.utc
WEEKLY = {"participants": ["alice", "bob"], "length": "1w", "handoff": "mon 09:00", "start": "2026-01-05"}
CONFIG = Config.model_validate({
    "people": {"alice": {}, "bob": {}, "carol": {}, "dave": {}},
    "schedules": {"primary-db": {"timezone": "Europe/Berlin", "rotations": [WEEKLY]},
                  "always": {"rotations": [{"participants": ["dave"]}]},
                  "later": {"rotations": [{"participants": ["bob"], "length": "1d", "start": "2026-02-02"}]}}})


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def ov(id: int, person: str, start: str, end: str, schedule: str = "primary-db") -> Override:
    return Override(id, schedule, person, at(start), at(end))


def who(instant: str, overrides, schedule: str = "primary-db") -> tuple:
    answer = on_call(CONFIG, schedule, at(instant), overrides)
    return answer.person, answer.until, answer.source


def test_no_override_leaves_the_rotations_answer_as_it_is():
    rotation = OnCall("primary-db", at("2026-01-07T12:00:00"), "alice", at("2026-01-12T08:00:00"), ROTATION)
    assert _with_overrides(rotation, []) is rotation
    assert who("2026-01-07T12:00:00", []) == ("alice", at("2026-01-12T08:00:00"), ROTATION)


@pytest.mark.parametrize("instant, expected", [
    ("2026-01-08T09:59:59", ("alice", at("2026-01-08T10:00:00"), ROTATION)),  # cut where the override begins
    ("2026-01-08T10:00:00", ("carol", at("2026-01-08T18:00:00"), OVERRIDE)),  # the start is inclusive
    ("2026-01-08T17:59:59", ("carol", at("2026-01-08T18:00:00"), OVERRIDE)),
    ("2026-01-08T18:00:00", ("alice", at("2026-01-12T08:00:00"), ROTATION)),  # the end is exclusive
])
def test_an_override_wins_for_its_span_and_the_rotation_returns(instant, expected):
    assert who(instant, [ov(1, "carol", "2026-01-08T10:00:00", "2026-01-08T18:00:00")]) == expected


def test_an_override_of_the_person_on_shift_still_says_override():
    assert who("2026-01-08T12:00:00", [ov(1, "alice", "2026-01-08T10:00:00", "2026-01-08T18:00:00")]) == (
        "alice", at("2026-01-08T18:00:00"), OVERRIDE)


def test_an_override_after_the_shift_ends_does_not_shorten_it():
    overrides = [ov(1, "carol", "2026-01-20T10:00:00", "2026-01-20T18:00:00")]
    assert who("2026-01-08T12:00:00", overrides) == ("alice", at("2026-01-12T08:00:00"), ROTATION)
    assert who("2026-01-19T12:00:00", overrides) == ("alice", at("2026-01-20T10:00:00"), ROTATION)


def test_an_override_across_a_handoff_holds_through_it():
    overrides = [ov(1, "carol", "2026-01-12T07:00:00", "2026-01-12T09:00:00")]
    assert who("2026-01-12T08:00:00", overrides) == ("carol", at("2026-01-12T09:00:00"), OVERRIDE)
    assert who("2026-01-12T09:00:00", overrides) == ("bob", at("2026-01-19T08:00:00"), ROTATION)


def test_nobody_on_shift_until_an_override_begins_and_during_it_the_override():
    overrides = [ov(1, "carol", "2026-01-10T00:00:00", "2026-01-11T00:00:00", schedule="later")]
    assert who("2026-01-07T12:00:00", overrides, "later") == (None, at("2026-01-10T00:00:00"), None)
    assert who("2026-01-10T06:00:00", overrides, "later") == ("carol", at("2026-01-11T00:00:00"), OVERRIDE)
    assert who("2026-01-11T00:00:00", overrides, "later") == (None, at("2026-02-02T00:00:00"), None)


def test_a_shift_that_never_ends_is_cut_at_the_next_override():
    overrides = [ov(1, "carol", "2026-01-10T00:00:00", "2026-01-11T00:00:00", schedule="always")]
    assert who("2026-01-07T12:00:00", overrides, "always") == ("dave", at("2026-01-10T00:00:00"), ROTATION)
    assert who("2026-01-11T00:00:00", overrides, "always") == ("dave", None, ROTATION)


def test_where_two_overlap_the_latest_made_wins_whatever_their_order():
    long_first = ov(1, "carol", "2026-01-08T10:00:00", "2026-01-08T20:00:00")
    short_later = ov(2, "bob", "2026-01-08T12:00:00", "2026-01-08T14:00:00")
    for overrides in ([long_first, short_later], [short_later, long_first]):
        # the older override holds until the newer one begins inside it, then again after the newer one ends
        assert who("2026-01-08T11:00:00", overrides) == ("carol", at("2026-01-08T12:00:00"), OVERRIDE)
        assert who("2026-01-08T12:00:00", overrides) == ("bob", at("2026-01-08T14:00:00"), OVERRIDE)
        assert who("2026-01-08T14:00:00", overrides) == ("carol", at("2026-01-08T20:00:00"), OVERRIDE)


def test_an_older_override_inside_a_newer_one_changes_nothing_while_the_newer_holds():
    short_first = ov(1, "bob", "2026-01-08T12:00:00", "2026-01-08T14:00:00")
    long_later = ov(2, "carol", "2026-01-08T10:00:00", "2026-01-08T20:00:00")
    for overrides in ([short_first, long_later], [long_later, short_first]):
        assert who("2026-01-08T11:00:00", overrides) == ("carol", at("2026-01-08T20:00:00"), OVERRIDE)
        assert who("2026-01-08T13:00:00", overrides) == ("carol", at("2026-01-08T20:00:00"), OVERRIDE)


def test_another_schedules_and_ended_overrides_change_nothing():
    overrides = [ov(1, "carol", "2026-01-08T10:00:00", "2026-01-08T18:00:00", schedule="always"),
                 ov(2, "carol", "2026-01-07T00:00:00", "2026-01-07T12:00:00")]  # ends at the instant asked about
    assert who("2026-01-07T12:00:00", overrides) == ("alice", at("2026-01-12T08:00:00"), ROTATION)
    assert who("2026-01-08T12:00:00", overrides, "always") == ("carol", at("2026-01-08T18:00:00"), OVERRIDE)


def test_shifts_show_the_override_as_its_own_event_and_merge_back_to_back_ones_of_a_person():
    overrides = [ov(1, "carol", "2026-01-08T10:00:00", "2026-01-08T18:00:00"),
                 ov(2, "alice", "2026-01-12T08:00:00", "2026-01-12T12:00:00")]  # alice stays past her handoff
    found = shifts(CONFIG, "primary-db", at("2026-01-07T00:00:00"), at("2026-01-14T00:00:00"), overrides=overrides)
    assert [(s.person, s.at, s.until, s.source) for s in found] == [
        ("alice", at("2026-01-07T00:00:00"), at("2026-01-08T10:00:00"), ROTATION),
        ("carol", at("2026-01-08T10:00:00"), at("2026-01-08T18:00:00"), OVERRIDE),
        ("alice", at("2026-01-08T18:00:00"), at("2026-01-12T12:00:00"), ROTATION),  # her week, then her override
        ("bob", at("2026-01-12T12:00:00"), at("2026-01-14T00:00:00"), ROTATION),
    ]
