"""Paging people: at send time, the person a message with a target reaches, and what happens when nobody can be.

A message whose intent named a target (`schedule:primary-db`, `person:alice`: a route's `{schedule: …, via: […]}`)
is resolved at each attempt, so a retry after a handoff pages whoever is on call then: a schedule through
engine/oncall.py with the overrides stored in the database (read once per claimed batch), a person directly. The
channel then sends to that person's address (domain.Recipient; channels/email, twilio_sms, slack).

Nobody on shift, or a person without the address the channel needs, is never a silent drop: the message is dead
(not attempted) with the reason, each of its alerts gets a `nobody_on_call` event, and the schedule's `fallback:`
channels are told instead, in the same write as the outcome (store/unpaged.py); the dispatcher logs an error and
counts alert_receiver_oncall_unresolved_total{schedule}.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Sequence

from sqlalchemy.engine import Connection

from ..config import Config
from ..config.people_routing import address_needed
from ..domain import NotificationKind, Recipient
from ..store import schedule_overrides
from ..store.outbox import Claimed
from ..store.unpaged import Unpaged
from .oncall import OnCall, on_call, rfc3339
from .plan import accepts_level, is_per_alert

PERSON = "person"  # person_source of a message to a named person (a schedule's is "rotation" or "override")
_PAGES = frozenset({NotificationKind.FIRING.value, NotificationKind.ESCALATED.value, NotificationKind.REPEAT.value})


@dataclasses.dataclass(frozen=True)
class Paging:
    """Whom message `target` reaches now: `recipient` (with `person` and `source`), or nobody and `reason`."""

    target: str
    recipient: Recipient | None
    person: str | None = None
    source: str | None = None  # "rotation" | "override" | "person"
    reason: str | None = None  # why nobody is reached: "nobody on call for schedule primary-db at …"
    schedule: str | None = None
    fallback: tuple[str, ...] = ()  # the schedule's fallback channels

    @property
    def metric_label(self) -> str:
        """alert_receiver_oncall_unresolved_total's `schedule`: the schedule, or "person:<name>"."""
        return self.schedule if self.schedule is not None else self.target


def resolve_batch(conn: Connection, config: Config, claimed: Sequence[Claimed], now: dt.datetime) -> dict[int, Paging]:
    """Paging for every claimed message that has a target, by message id: one read of the overrides holding now."""
    targeted = [c for c in claimed if c.target]
    if not targeted:
        return {}
    schedules = sorted({c.target.partition(":")[2] for c in targeted if c.target.startswith("schedule:")})
    overrides = schedule_overrides.overlapping(conn, now, now + dt.timedelta(seconds=1), schedules) \
        if schedules else []
    answers: dict[str, OnCall] = {}

    def who(schedule: str) -> OnCall:
        if schedule not in answers:
            answers[schedule] = on_call(config, schedule, now, overrides)
        return answers[schedule]

    return {c.id: resolve(config, c.target, c.channel, now, who) for c in targeted}


def resolve(config: Config, target: str, channel: str, now: dt.datetime, who) -> Paging:
    """Whom `target` reaches through `channel` at `now` (`who(schedule)` answers who is on call)."""
    kind, _, name = target.partition(":")
    if kind == "schedule":
        schedule = config.schedules.get(name)
        if schedule is None:
            return Paging(target, None, reason=f'schedule "{name}" is no longer configured', schedule=name)
        answer = who(name)
        paging = Paging(target, None, answer.person, answer.source, schedule=name, fallback=schedule.fallback)
        if answer.person is None:
            return dataclasses.replace(paging, reason=f"nobody on call for schedule {name} at {rfc3339(now)}")
    elif kind == "person":
        paging = Paging(target, None, name, PERSON)
    else:
        return Paging(target, None, reason=f"unknown target {target!r}")
    return _address(config, paging, channel, now)


def _address(config: Config, paging: Paging, channel: str, now: dt.datetime) -> Paging:
    """The recipient, if the person exists and has the address `channel` sends to; else nobody, saying why."""
    person = config.people.get(paging.person or "")
    prefix = f"nobody on call for schedule {paging.schedule} at {rfc3339(now)}: " if paging.schedule else ""
    if person is None:
        return dataclasses.replace(paging, reason=f'{prefix}{paging.person} is not one of the people (the config '
                                                  f'changed, or an override names someone it does not list)')
    field = address_needed(config, channel)
    if field is not None and not getattr(person, field):
        return dataclasses.replace(paging, reason=f"{prefix}{paging.person} has no {field} for channel {channel}")
    recipient = Recipient(paging.person, email=person.email, phone=person.phone, slack_user=person.slack_user,
                          source=paging.source)
    return dataclasses.replace(paging, recipient=recipient)


def unpaged(config: Config, item: Claimed, paging: Paging, at: dt.datetime) -> Unpaged:
    """The write that makes a message that reached nobody loud: its event's details and the fallback told. A notice
    (acknowledged, resolved) has no fallback: the channels that paged no one have nothing to follow up."""
    fallback = tuple((name, is_per_alert(config, name)) for name in paging.fallback
                     if item.kind in _PAGES and name in config.channels
                     and (not item.level or accepts_level(config, name, item.level)))
    if fallback:
        then = "paged the schedule's fallback instead: " + ", ".join(name for name, _ in fallback)
    elif item.kind in _PAGES:
        then = "no fallback: the level's other channels were paged"
    else:
        then = f"a notice ({item.kind}): no fallback"
    details = {"target": paging.target, "channel": item.channel, "reason": paging.reason,
               "fallback": [name for name, _ in fallback], "then": then}
    details["schedule" if paging.schedule is not None else "person"] = paging.schedule or paging.person
    return Unpaged(item.id, at, details, fallback)
