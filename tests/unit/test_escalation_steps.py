"""The pure escalation decisions as a case table: what a fired timer does (due_step) and what a person's
escalation does (manual_step), for every level and policy shape, with the timer that follows."""

from __future__ import annotations

import datetime as dt

import pytest

from receiver.config.routes import LevelPolicy, ResolvedRoute
from receiver.domain import Level
from receiver.engine.escalation import Action, Step, due_step, level_delay, manual_step

L1, L2, L3 = Level.L1, Level.L2, Level.L3
M = dt.timedelta(minutes=1)


def route(l3=(5, None), l2=(15, None), l1=(None, 15)) -> ResolvedRoute:
    """(escalate_after, repeat_every) in minutes per level; None: no such timer."""
    def policy(pair):
        escalate, repeat = pair
        return LevelPolicy(escalate_after=escalate and escalate * M, repeat_every=repeat and repeat * M)
    return ResolvedRoute(index=0, name="default", matchers=(), channels={lv: ("log",) for lv in Level},
                         policies={L3: policy(l3), L2: policy(l2), L1: policy(l1)}, ack_ttl=None, escalate=True,
                         ack_silence=False, continue_=False, is_default=True)


DEFAULT = route()


@pytest.mark.parametrize("r, level, acked, want", [
    # unacknowledged: up one level, and the new level's timer
    (DEFAULT, L3, False, Step(Action.ESCALATE, L3, L2, 15 * M)),
    (DEFAULT, L2, False, Step(Action.ESCALATE, L2, L1, 15 * M)),  # L1's timer is its repeat
    (DEFAULT, L1, False, Step(Action.REPEAT, L1, L1, 15 * M)),
    # an ack that expired: the same level again, its own timer restarted
    (DEFAULT, L3, True, Step(Action.RESUME, L3, L3, 5 * M)),
    (DEFAULT, L1, True, Step(Action.RESUME, L1, L1, 15 * M)),
    # a level that only repeats stays and repeats
    (route(l3=(None, 10)), L3, False, Step(Action.REPEAT, L3, L3, 10 * M)),
    # escalation wins over a repeat below L1
    (route(l3=(5, 1)), L3, False, Step(Action.ESCALATE, L3, L2, 15 * M)),
    # escalating into a level without timers: no timer after the step
    (route(l2=(None, None)), L3, False, Step(Action.ESCALATE, L3, L2, None)),
    # L1 without a repeat (a reload removed it): the timer is just cleared
    (route(l1=(None, None)), L1, False, Step(Action.NONE, L1, L1, None)),
    (route(l3=(None, None)), L3, False, Step(Action.NONE, L3, L3, None)),
])
def test_a_fired_timer(r, level, acked, want):
    assert due_step(r, level, acked=acked) == want


@pytest.mark.parametrize("level, target, want", [
    (L3, None, Step(Action.ESCALATE, L3, L2, 15 * M)),
    (L2, None, Step(Action.ESCALATE, L2, L1, 15 * M)),
    (L3, L1, Step(Action.ESCALATE, L3, L1, 15 * M)),  # straight to the top
    (L1, None, None),  # nothing above L1
    (L2, L2, None),  # not above the current level
    (L2, L3, None),
])
def test_a_person_escalates(level, target, want):
    assert manual_step(DEFAULT, level, target) == want


@pytest.mark.parametrize("action, kind, event, bumps", [
    (Action.ESCALATE, "escalated", "escalated", False),
    (Action.REPEAT, "repeat", "repeated", True),
    (Action.RESUME, "repeat", "ack_expired", True),
    (Action.NONE, None, None, False),
])
def test_what_each_step_records_and_notifies(action, kind, event, bumps):
    step = Step(action, L2, L2, None)
    assert (getattr(step.notification_kind, "value", None), getattr(step.event_kind, "value", None),
            step.bumps_repeat) == (kind, event, bumps)


def test_level_delay_is_escalate_after_below_l1_and_repeat_every_at_l1():
    r = route(l3=(5, 2), l1=(None, 30))
    assert (level_delay(r, L3), level_delay(r, L1)) == (5 * M, 30 * M)
    assert level_delay(route(l3=(None, 2)), L3) == 2 * M
