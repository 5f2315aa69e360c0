"""Paging the person on call across the DST changes of the schedule's zone, and under a daytime layer, with an
injected clock on SQLite and PostgreSQL: a weekly rotation handing off on Monday 09:00 Europe/Berlin pages the
outgoing person one second before the handoff and the incoming one at it — on the Mondays right after the March
and October changes, when 09:00 in Berlin is 07:00 and 08:00 UTC — and a weekday 09:00-17:00 layer listed first
wins in its hours, the rotation outside them.

The rotation began on Monday 2026-01-05 with alice: weeks 0, 2, 4, … are alice's, so the week from Monday
2026-03-30 (12 weeks on) and the week from Monday 2026-10-26 (42 weeks on) are alice's, and the weeks before bob's."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app

from .harness import Ladder, body_with
from .test_paging import CHANNELS, PEOPLE

UTC = dt.timezone.utc
PEOPLE_AND_CAROL = {**PEOPLE, "carol": {"email": "carol@example.org", "phone": "+4915550003"}}
WEEKLY = {"participants": ["alice", "bob"], "length": "1w", "handoff": "mon 09:00", "start": "2026-01-05"}
SCHEDULES = {
    "primary-db": {"timezone": "Europe/Berlin", "rotations": [WEEKLY]},
    "daytime-db": {"timezone": "Europe/Berlin", "rotations": [
        {"participants": ["carol"], "hours": "mon-fri 09:00-17:00"}, WEEKLY]},
}
ROUTES = [
    {"matchers": ['layer="daytime"'], "levels": {"L1": [{"schedule": "daytime-db", "via": ["email-oncall"]}]}},
    {"levels": {"L1": [{"schedule": "primary-db", "via": ["sms-oncall", "email-oncall"]}],
                "L2": ["chat"], "L3": ["chat"]}},
]


@pytest.fixture
def lad(make_config, clock):
    config = make_config(people=PEOPLE_AND_CAROL, schedules=SCHEDULES, channels=CHANNELS, routes=ROUTES)
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    ladder = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
    yield ladder
    ladder.close()
    app.extensions["alert_receiver"].db.dispose()


def paged_at(lad: Ladder, at: dt.datetime, **labels) -> tuple[str, str]:
    """Whom an L1 page sent at `at` reached by e-mail and by SMS (the SMS only on the primary route)."""
    lad.clock.set(at)
    before = len(lad.channels["email-oncall"].sent), len(lad.channels["sms-oncall"].sent)
    lad.post(body_with("g_routing_critical", instance=at.isoformat(), **labels))
    lad.deliver()
    mails = lad.channels["email-oncall"].sent[before[0]:]
    texts = lad.channels["sms-oncall"].sent[before[1]:]
    assert len(mails) == 1, mails
    return mails[0].recipient.email, (texts[0].recipient.phone if texts else "")


@pytest.mark.parametrize("handoff", [
    dt.datetime(2026, 3, 30, 7, 0, tzinfo=UTC),  # the Monday after 2026-03-29 (CEST, UTC+2)
    dt.datetime(2026, 10, 26, 8, 0, tzinfo=UTC),  # the Monday after 2026-10-25 (CET, UTC+1)
    dt.datetime(2026, 11, 30, 8, 0, tzinfo=UTC),  # a Monday with no change near (bob's week: the other way)
], ids=["march", "october", "november"])
def test_the_weekly_handoff_pages_the_right_person_on_both_sides_across_dst(lad, handoff):
    incoming = "alice" if handoff.month in (3, 10) else "bob"
    outgoing = {"alice": "bob", "bob": "alice"}[incoming]
    email = {p: PEOPLE_AND_CAROL[p]["email"] for p in ("alice", "bob")}
    phone = {p: PEOPLE_AND_CAROL[p]["phone"] for p in ("alice", "bob")}
    assert paged_at(lad, handoff - dt.timedelta(seconds=1)) == (email[outgoing], phone[outgoing])
    assert paged_at(lad, handoff) == (email[incoming], phone[incoming])
    # One hour either side of the handoff in UTC is not the handoff: a clock that ignored DST would move it.
    assert paged_at(lad, handoff + dt.timedelta(hours=1))[0] == email[incoming]


def test_the_daytime_layer_wins_in_its_hours_on_weekdays_and_the_rotation_outside(lad):
    tuesday_noon = dt.datetime(2026, 3, 31, 10, 0, tzinfo=UTC)  # 12:00 CEST: carol's hours
    assert paged_at(lad, tuesday_noon, layer="daytime")[0] == "carol@example.org"
    evening = dt.datetime(2026, 3, 31, 15, 0, tzinfo=UTC)  # 17:00 CEST: her hours just ended
    assert paged_at(lad, evening, layer="daytime")[0] == "alice@example.org"
    saturday_noon = dt.datetime(2026, 4, 4, 10, 0, tzinfo=UTC)  # a weekend: the rotation
    assert paged_at(lad, saturday_noon, layer="daytime")[0] == "alice@example.org"
    morning = dt.datetime(2026, 10, 27, 8, 0, tzinfo=UTC)  # Tuesday 09:00 CET, after the October change
    assert paged_at(lad, morning, layer="daytime")[0] == "carol@example.org"
    assert paged_at(lad, morning - dt.timedelta(seconds=1), layer="daytime")[0] == "alice@example.org"
